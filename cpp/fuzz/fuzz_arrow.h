// Logical Arrow columns for the fuzzers and their materialisation into the test builder's nodes
// (cpp/tests/arrow_test_builder.h), with the fuzz input choosing each node's offset, length, validity bitmap,
// null count, list offsets and dictionary. Every buffer is allocated exactly as large as the node's declared
// offset + length needs under the C Data Interface, so that AddressSanitizer reports any read the core makes
// past what a producer must provide; layouts the core must refuse (a negative offset or length, or a buffer size
// past INT64_MAX) come with buffers that cannot back them, which only a missing check would touch.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "arrow_test_builder.h"
#include "fuzz_input.h"
#include "loaderbench/arrow_owners.h"

namespace loaderbench::fuzz {

/// One logical array: what a producer means, before the fuzz input decides how it is laid out.
struct Column {
  enum class Kind { kPrimitive, kBinary, kList, kFixedList, kStruct, kNull };
  Kind kind = Kind::kPrimitive;
  std::string format;
  std::string name;
  int width = 0;                      // primitive: bytes per value
  std::vector<uint8_t> values;        // primitive: length * width bytes
  std::vector<std::string> strings;   // binary/string elements
  std::vector<int64_t> offsets;       // list: length + 1 offsets into the child's logical elements
  int64_t fixed_size = 0;             // fixed-size list
  int64_t null_length = 0;            // null-typed column
  std::vector<Column> children;
  std::vector<int64_t> nulls;         // logical elements that are null (the generators use none by default)

  int64_t length() const;
};

/// Byte width of an integer/float format character ("c", "S", "l", "f", ...), 0 if not one.
int format_width(const std::string& format);
/// `value` stored as `format` (truncating, as a producer with that type would) and read back as the core reads it.
int64_t as_format(const std::string& format, int64_t value);

Column integers(const std::string& format, const std::string& name, const std::vector<int64_t>& values);
Column raw_values(const std::string& format, const std::string& name, std::vector<uint8_t> bytes);
Column strings(const std::string& format, const std::string& name, std::vector<std::string> values);
Column list(const std::string& format, const std::string& name, Column child, std::vector<int64_t> offsets);
Column fixed_list(const std::string& name, Column child, int64_t size);
Column structure(const std::string& name, std::vector<Column> children);
Column null_column(const std::string& name, int64_t length);

/// A readable dump of a node tree (formats, lengths, offsets, null counts, buffer sizes, list/string offsets
/// and small integer buffers), for explaining a reproducer.
std::string describe(const testing::NodePtr& node, int indent = 0);

/// Where a dictionary pointer goes, by the node's pre-order number in the exported tree.
struct DictionaryPlacement {
  int node = 0;
  bool on_schema = false;
  bool on_array = false;
};

/// Builds the node tree of `column` with fuzz-chosen layout; appends dictionary placements to `dictionaries`.
testing::NodePtr materialize(const Column& column, FuzzInput& in, std::vector<DictionaryPlacement>* dictionaries);

/// A stream over batches that share one schema (the first batch's), exporting each with its dictionary
/// placements; get_next fails with EIO at call `fail_at` (-1: never). The dictionaries live in `keep_alive`, which
/// must outlive everything the consumer keeps (the core never releases a dictionary itself).
struct StreamPlan {
  std::vector<testing::NodePtr> batches;
  std::vector<std::vector<DictionaryPlacement>> dictionaries;  // per batch
  int fail_at = -1;
};
class DictionaryStore;
StreamOwner make_stream(const StreamPlan& plan, const std::shared_ptr<DictionaryStore>& keep_alive);
std::shared_ptr<DictionaryStore> make_dictionary_store();

}  // namespace loaderbench::fuzz
