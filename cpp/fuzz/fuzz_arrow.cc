#include "fuzz_arrow.h"

#include <algorithm>
#include <cerrno>
#include <limits>
#include <stdexcept>

namespace loaderbench::fuzz {
namespace {

using testing::Node;
using testing::NodePtr;

constexpr int64_t kMaxPhysical = int64_t{1} << 16;  // elements a node may grow to (beyond: not backed, reverted)
constexpr int64_t kMaxBytes = int64_t{1} << 20;     // bytes a string values buffer may grow to
constexpr uint8_t kFiller = 0xA5;                   // bytes of elements the core must not read as data
__extension__ typedef __int128 int128;

int offset_width(const std::string& format) {
  return format == "+L" || format == "U" || format == "Z" ? 8 : 4;
}

void put_le(uint8_t* dst, int64_t value, int width) {
  const auto v = static_cast<uint64_t>(value);
  for (int k = 0; k < width; ++k) dst[k] = static_cast<uint8_t>(v >> (8 * k));
}

struct Builder {
  FuzzInput& in;
  std::vector<DictionaryPlacement>* dictionaries;
  int counter = 0;

  /// The physical array offset: mostly 0, often a small valid one (the data sits behind filler elements), rarely
  /// a negative one or one that no buffer can back (see build()).
  int64_t choose_offset() {
    static constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
    static constexpr int64_t kOffsets[] = {1,        2,        3,        5,           7,  8,  9, 16, 17, 63, 64,
                                           kMax,     kMax - 1, kMax - 3, kMax - 8,    -1, -8, std::numeric_limits<int64_t>::min(),
                                           kMax / 2, kMax / 4 + 1};
    const uint32_t v = in.rare(static_cast<uint32_t>(std::size(kOffsets)));
    return v == 0 ? 0 : kOffsets[v - 1];
  }

  /// Validity bitmap of `physical` elements (bit p set = valid) and the null count, per the fuzz input.
  void choose_validity(Node& node, int64_t offset, int64_t length, int64_t lead, const Column& c, bool backed) {
    std::vector<int64_t> null_elements;  // logical indices (into this node's elements, lead included)
    for (int64_t k : c.nulls) null_elements.push_back(lead + k);
    const uint32_t v = in.rare(6);
    bool bitmap = !null_elements.empty();
    int64_t null_count = static_cast<int64_t>(null_elements.size());
    switch (v) {
      case 1: bitmap = true; break;
      case 2: bitmap = true; null_count = -1; break;
      case 3:  // one more element null: its value is still real data, but the core must now refuse or skip it
        if (length > 0) {
          null_elements.push_back(static_cast<int64_t>(in.raw(1)) % length);
          null_count += 1;
          bitmap = true;
          in.perturb_structure();
        }
        break;
      case 4: bitmap = false; null_count = 1 + static_cast<int64_t>(in.raw(1)); in.perturb_structure(); break;
      case 5: if (length > 0) { null_elements.push_back(0); bitmap = true; null_count = 0; in.perturb_structure(); } break;
      case 6: if (!bitmap) null_count = -1; break;  // unknown count, no bitmap: no nulls
      default: break;
    }
    node.null_count = null_count;
    if (!bitmap || !backed) return;
    std::vector<uint8_t> bits(static_cast<size_t>((offset + length + 7) / 8), 0xFF);
    for (int64_t k : null_elements) {
      const int64_t bit = offset + k;
      if (k >= 0 && k < length) bits[static_cast<size_t>(bit >> 3)] &= static_cast<uint8_t>(~(1u << (bit & 7)));
    }
    node.buffers[0] = std::move(bits);
  }

  void choose_dictionary(int index) {
    const uint32_t v = in.rare(3);
    if (v == 0) return;
    in.perturb_structure();
    dictionaries->push_back({index, v != 2, v != 1});
  }

  /// Builds `c` preceded by `lead` filler elements (a parent struct's offset, a list's base).
  NodePtr build(const Column& c, int64_t lead) {
    const int index = counter++;
    auto node = std::make_shared<Node>();
    node->format = c.format;
    node->name = c.name;
    const int64_t n = lead + c.length();

    int64_t offset = choose_offset();
    int64_t length = n;
    if (const uint32_t v = in.rare(32); v != 0) length = in.edge_value(v - 1, n);
    // What this node's own buffers need under the C Data Interface (in int128, so nothing overflows here): bytes
    // of data or offsets, child elements of a fixed-size list, offset + length itself for a struct or null column.
    const int128 elements = int128{offset} + length;
    int128 needed = elements;
    if (c.kind == Column::Kind::kPrimitive) needed = elements * c.width;
    if (c.kind == Column::Kind::kList || c.kind == Column::Kind::kBinary) needed = (elements + 1) * offset_width(c.format);
    if (c.kind == Column::Kind::kFixedList) needed = elements * c.fixed_size;
    // A layout no producer can back but an overflow-checked consumer can recognise (negative, or a size past
    // int64; for a struct also children shorter than it needs) is kept, with buffers laid out for offset 0 and the
    // natural length, so that only a missing check reads them. One that is merely larger than the fuzzer grants is
    // reverted: a consumer cannot tell it from a real one.
    const bool detectable = offset < 0 || length < 0 || needed > std::numeric_limits<int64_t>::max();
    bool impossible = detectable;
    if (!detectable && elements > kMaxPhysical && c.kind != Column::Kind::kNull) {
      if (c.kind == Column::Kind::kStruct) {
        impossible = true;  // its children cannot carry that many filler rows: the core must see them too short
      } else {
        offset = offset > kMaxPhysical / 2 ? 0 : offset;
        length = n;
      }
    }
    if (length != n || impossible) in.perturb_structure();
    node->offset = offset;
    node->length = length;
    const int64_t phys_offset = impossible ? 0 : offset;
    const int64_t phys_length = impossible ? n : length;

    switch (c.kind) {
      case Column::Kind::kNull:
        node->null_count = length;
        choose_dictionary(index);
        return node;
      case Column::Kind::kPrimitive: {
        node->buffers.resize(2);
        std::vector<uint8_t> data(static_cast<size_t>((phys_offset + phys_length) * c.width), kFiller);
        for (int64_t j = lead; j < std::min(n, phys_length); ++j) {
          std::memcpy(data.data() + (phys_offset + j) * c.width, c.values.data() + (j - lead) * c.width,
                      static_cast<size_t>(c.width));
        }
        node->buffers[1] = std::move(data);
        break;
      }
      case Column::Kind::kBinary: {
        node->buffers.resize(3);
        const int width = offset_width(c.format);
        const int64_t base = in.choose(3, "string_base") * 3;  // offsets need not start at 0
        std::vector<uint8_t> offsets(static_cast<size_t>((phys_offset + phys_length + 1) * width));
        std::vector<int64_t> correct(static_cast<size_t>(phys_offset + phys_length + 1));
        int64_t at = base;
        for (int64_t p = 0; p <= phys_offset + phys_length; ++p) {
          correct[static_cast<size_t>(p)] = at;
          const int64_t j = p - phys_offset;  // element p ends at the next entry
          if (j >= lead && j < std::min(n, phys_length)) at += static_cast<int64_t>(c.strings[static_cast<size_t>(j - lead)].size());
        }
        std::vector<int64_t> chosen = correct;
        if (!impossible) {
          for (int64_t p = phys_offset; p <= phys_offset + phys_length; ++p) {
            if (const uint32_t v = in.rare(32); v != 0) {
              chosen[static_cast<size_t>(p)] = width == 4 ? static_cast<int32_t>(in.edge_value(v - 1, correct[p]))
                                                          : in.edge_value(v - 1, correct[p]);
            }
          }
        }
        // The values buffer must hold what valid offsets point at (the consumer cannot know its size); offsets
        // the core must refuse (decreasing, negative) get the natural buffer.
        bool monotonic = chosen[static_cast<size_t>(phys_offset)] >= 0;
        int64_t reach = chosen[static_cast<size_t>(phys_offset)];
        for (int64_t p = phys_offset + 1; p <= phys_offset + phys_length; ++p) {
          monotonic = monotonic && chosen[static_cast<size_t>(p)] >= chosen[static_cast<size_t>(p - 1)];
          reach = std::max(reach, chosen[static_cast<size_t>(p)]);
        }
        if (monotonic && reach > kMaxBytes) chosen = correct;
        if (chosen != correct) in.perturb_structure();
        const int64_t values_size = monotonic && reach <= kMaxBytes ? reach : at;
        for (size_t p = 0; p < chosen.size(); ++p) put_le(offsets.data() + p * width, chosen[p], width);
        std::vector<uint8_t> values(static_cast<size_t>(values_size), 'Z');
        for (int64_t j = lead; j < std::min(n, phys_length); ++j) {
          const std::string& s = c.strings[static_cast<size_t>(j - lead)];
          const int64_t begin = correct[static_cast<size_t>(phys_offset + j)];
          const int64_t fits = std::min<int64_t>(static_cast<int64_t>(s.size()), values_size - begin);
          if (fits > 0) std::memcpy(values.data() + begin, s.data(), static_cast<size_t>(fits));
        }
        node->buffers[1] = std::move(offsets);
        node->buffers[2] = std::move(values);
        break;
      }
      case Column::Kind::kList: {
        node->buffers.resize(2);
        const int width = offset_width(c.format);
        const int64_t base = in.choose(3, "list_base") * 2;
        std::vector<uint8_t> offsets(static_cast<size_t>((phys_offset + phys_length + 1) * width));
        for (int64_t p = 0; p <= phys_offset + phys_length; ++p) {
          const int64_t j = std::clamp<int64_t>(p - phys_offset - lead, 0, c.length());  // logical entry
          const int64_t correct = base + c.offsets[static_cast<size_t>(j)];
          int64_t value = correct;
          if (!impossible && p >= phys_offset) {
            if (const uint32_t v = in.rare(32); v != 0) value = in.edge_value(v - 1, correct);
            if (width == 4) value = static_cast<int32_t>(value);
            if (value != correct) in.perturb_structure();
          }
          put_le(offsets.data() + p * width, value, width);
        }
        node->buffers[1] = std::move(offsets);
        node->children.push_back(build(c.children[0], base));
        break;
      }
      case Column::Kind::kFixedList:
        node->buffers.resize(1);
        node->children.push_back(build(c.children[0], (phys_offset + lead) * c.fixed_size));
        break;
      case Column::Kind::kStruct:
        node->buffers.resize(1);
        for (const Column& child : c.children) node->children.push_back(build(child, phys_offset + lead));
        break;
    }
    choose_validity(*node, phys_offset, phys_length, lead, c, !impossible);
    choose_dictionary(index);
    return node;
  }
};

}  // namespace

int64_t Column::length() const {
  switch (kind) {
    case Kind::kPrimitive: return width == 0 ? 0 : static_cast<int64_t>(values.size()) / width;
    case Kind::kBinary: return static_cast<int64_t>(strings.size());
    case Kind::kList: return static_cast<int64_t>(offsets.size()) - 1;
    case Kind::kFixedList: return fixed_size == 0 ? 0 : children[0].length() / fixed_size;
    case Kind::kStruct: return null_length;
    case Kind::kNull: return null_length;
  }
  return 0;
}

int format_width(const std::string& format) {
  if (format == "c" || format == "C") return 1;
  if (format == "s" || format == "S" || format == "e") return 2;
  if (format == "i" || format == "I" || format == "f") return 4;
  if (format == "l" || format == "L" || format == "g") return 8;
  return 0;
}

int64_t as_format(const std::string& format, int64_t value) {
  if (format == "c") return static_cast<int8_t>(value);
  if (format == "C") return static_cast<uint8_t>(value);
  if (format == "s") return static_cast<int16_t>(value);
  if (format == "S") return static_cast<uint16_t>(value);
  if (format == "i") return static_cast<int32_t>(value);
  if (format == "I") return static_cast<uint32_t>(value);
  return value;  // "l", and "L" read back through int64
}

Column integers(const std::string& format, const std::string& name, const std::vector<int64_t>& values) {
  Column c;
  c.kind = Column::Kind::kPrimitive;
  c.format = format;
  c.name = name;
  c.width = format_width(format);
  if (c.width == 0) throw std::logic_error("not an integer format: " + format);
  c.values.resize(values.size() * static_cast<size_t>(c.width));
  for (size_t k = 0; k < values.size(); ++k) put_le(c.values.data() + k * c.width, values[k], c.width);
  return c;
}

Column raw_values(const std::string& format, const std::string& name, std::vector<uint8_t> bytes) {
  Column c;
  c.kind = Column::Kind::kPrimitive;
  c.format = format;
  c.name = name;
  c.width = format_width(format);
  c.values = std::move(bytes);
  return c;
}

Column strings(const std::string& format, const std::string& name, std::vector<std::string> values) {
  Column c;
  c.kind = Column::Kind::kBinary;
  c.format = format;
  c.name = name;
  c.strings = std::move(values);
  return c;
}

Column list(const std::string& format, const std::string& name, Column child, std::vector<int64_t> offsets) {
  Column c;
  c.kind = Column::Kind::kList;
  c.format = format;
  c.name = name;
  child.name = "item";
  c.children.push_back(std::move(child));
  c.offsets = std::move(offsets);
  return c;
}

Column fixed_list(const std::string& name, Column child, int64_t size) {
  Column c;
  c.kind = Column::Kind::kFixedList;
  c.format = "+w:" + std::to_string(size);
  c.name = name;
  c.fixed_size = size;
  child.name = "item";
  c.children.push_back(std::move(child));
  return c;
}

Column structure(const std::string& name, std::vector<Column> children) {
  Column c;
  c.kind = Column::Kind::kStruct;
  c.format = "+s";
  c.name = name;
  c.null_length = children.empty() ? 0 : children[0].length();
  c.children = std::move(children);
  return c;
}

Column null_column(const std::string& name, int64_t length) {
  Column c;
  c.kind = Column::Kind::kNull;
  c.format = "n";
  c.name = name;
  c.null_length = length;
  return c;
}

std::string describe(const testing::NodePtr& node, int indent) {
  std::string out(static_cast<size_t>(indent), ' ');
  out += "'" + node->name + "' " + node->format + " length " + std::to_string(node->length) + " offset " +
         std::to_string(node->offset) + " null_count " + std::to_string(node->null_count) + " buffers [";
  for (size_t k = 0; k < node->buffers.size(); ++k) {
    out += k ? ", " : "";
    out += node->buffers[k] ? std::to_string(node->buffers[k]->size()) + " B" : std::string("null");
  }
  out += "]";
  const int width = format_width(node->format);
  const bool offsets = node->format == "+l" || node->format == "+L" || node->format == "u" || node->format == "U" ||
                       node->format == "z" || node->format == "Z";
  if ((offsets || (width > 0 && node->format != "f" && node->format != "g" && node->format != "e")) &&
      node->buffers.size() > 1 && node->buffers[1]) {
    const int w = offsets ? offset_width(node->format) : width;
    const auto& b = *node->buffers[1];
    out += offsets ? " offsets" : " values";
    for (size_t k = 0; k + w <= b.size() && k < 24 * static_cast<size_t>(w); k += static_cast<size_t>(w)) {
      int64_t v = 0;
      for (int i = 0; i < w; ++i) v |= static_cast<int64_t>(b[k + static_cast<size_t>(i)]) << (8 * i);
      if (w < 8 && (v >> (8 * w - 1)) & 1 && node->format != "C" && node->format != "S" && node->format != "I") {
        v -= int64_t{1} << (8 * w);  // sign-extend the signed formats
      }
      out += " " + std::to_string(v);
    }
  }
  out += "\n";
  for (const auto& child : node->children) out += describe(child, indent + 2);
  return out;
}

testing::NodePtr materialize(const Column& column, FuzzInput& in, std::vector<DictionaryPlacement>* dictionaries) {
  Builder builder{in, dictionaries};
  return builder.build(column, 0);
}

/// Dictionaries handed out by streams: a small string array each, released when the store dies.
class DictionaryStore {
 public:
  ~DictionaryStore() {
    for (auto& s : schemas_) {
      if (s->release) s->release(s.get());
    }
    for (auto& a : arrays_) {
      if (a->release) a->release(a.get());
    }
  }
  ArrowSchema* schema() {
    schemas_.push_back(std::make_unique<ArrowSchema>());
    testing::export_schema(node_, schemas_.back().get());
    return schemas_.back().get();
  }
  ArrowArray* array() {
    arrays_.push_back(std::make_unique<ArrowArray>());
    testing::export_array(node_, arrays_.back().get());
    return arrays_.back().get();
  }

 private:
  NodePtr node_ = testing::strings("dictionary", {"uint16", "zstd", "7"});
  std::vector<std::unique_ptr<ArrowSchema>> schemas_;
  std::vector<std::unique_ptr<ArrowArray>> arrays_;
};

std::shared_ptr<DictionaryStore> make_dictionary_store() { return std::make_shared<DictionaryStore>(); }

namespace {

template <typename T, typename Attach>
void attach(T* node, int* counter, const std::vector<DictionaryPlacement>& placements, const Attach& make) {
  const int index = (*counter)++;
  for (const DictionaryPlacement& d : placements) {
    if (d.node == index) node->dictionary = make(d);
  }
  for (int64_t k = 0; k < node->n_children; ++k) attach(node->children[k], counter, placements, make);
}

struct PlanStream {
  StreamPlan plan;
  std::shared_ptr<DictionaryStore> store;
  size_t next = 0;

  static PlanStream* self(ArrowArrayStream* s) { return static_cast<PlanStream*>(s->private_data); }
  static int get_schema(ArrowArrayStream* s, ArrowSchema* out) {
    PlanStream* p = self(s);
    testing::export_schema(p->plan.batches.at(0), out);
    int counter = 0;
    attach(out, &counter, p->plan.dictionaries.at(0), [&](const DictionaryPlacement& d) {
      return d.on_schema ? p->store->schema() : nullptr;
    });
    return 0;
  }
  static int get_next(ArrowArrayStream* s, ArrowArray* out) {
    PlanStream* p = self(s);
    if (static_cast<int>(p->next) == p->plan.fail_at) return EIO;
    if (p->next == p->plan.batches.size()) {
      out->release = nullptr;
      return 0;
    }
    const size_t b = p->next++;
    testing::export_array(p->plan.batches[b], out);
    int counter = 0;
    attach(out, &counter, p->plan.dictionaries.at(b), [&](const DictionaryPlacement& d) {
      return d.on_array ? p->store->array() : nullptr;
    });
    return 0;
  }
  static const char* last_error(ArrowArrayStream*) { return "injected stream failure"; }
  static void release(ArrowArrayStream* s) {
    delete self(s);
    s->release = nullptr;
  }
};

}  // namespace

StreamOwner make_stream(const StreamPlan& plan, const std::shared_ptr<DictionaryStore>& keep_alive) {
  auto* p = new PlanStream{plan, keep_alive, 0};
  ArrowArrayStream raw{PlanStream::get_schema, PlanStream::get_next, PlanStream::last_error, PlanStream::release, p};
  return StreamOwner(&raw);
}

}  // namespace loaderbench::fuzz
