#include "loaderbench/arrow_view.h"

#include <gtest/gtest.h>

#include <cstdint>

#include "arrow_test_builder.h"
#include "loaderbench/arrow_owners.h"

namespace loaderbench {
namespace {

using testing::export_array;
using testing::export_schema;

struct Exported {
  SchemaOwner schema;
  ArrayOwner array;
  explicit Exported(const testing::NodePtr& node) {
    export_schema(node, schema.get());
    export_array(node, array.get());
  }
  ArrayView view() const { return ArrayView::make(schema.get(), array.get(), "x"); }
};

TEST(ParseFormat, KnowsTheTypesTheImporterReads) {
  EXPECT_EQ(parse_format("S").type, ArrowType::kUint16);
  EXPECT_EQ(parse_format("+l").type, ArrowType::kList);
  EXPECT_EQ(parse_format("+L").type, ArrowType::kLargeList);
  EXPECT_EQ(parse_format("Z").type, ArrowType::kLargeBinary);
  EXPECT_EQ(parse_format("tsu:UTC").type, ArrowType::kTimestamp);
  const ParsedFormat fixed = parse_format("+w:12");
  EXPECT_EQ(fixed.type, ArrowType::kFixedSizeList);
  EXPECT_EQ(fixed.fixed_size, 12);
  EXPECT_EQ(parse_format("d:19,10").type, ArrowType::kOther);
  EXPECT_THROW(parse_format("+w:x"), ImportError);
  EXPECT_THROW(parse_format(nullptr), ImportError);
}

// Found by the fuzzer: the interface carries no buffer sizes, so a length or offset whose buffer could not exist
// (its byte size overflows int64) must be refused before anything indexes into it.
TEST(ArrayView, RefusesLengthsAndOffsetsNoBufferCouldHold) {
  auto list = testing::list("l", testing::primitive<int32_t>("i", "v", {1}), {0, 1});
  list->length = INT64_MAX;
  EXPECT_THROW(Exported(list).view(), ImportError);
  auto values = testing::primitive<int64_t>("l", "v", {1});
  values->offset = (int64_t{1} << 62) - 1;
  values->length = 0;
  EXPECT_THROW(Exported(values).view(), ImportError);
  auto text = testing::strings("s", {"a"});
  text->offset = INT64_MAX;
  text->length = 0;
  EXPECT_THROW(Exported(text).view(), ImportError);
}

TEST(ArrowOwner, ReleasesExactlyOnceAndMoves) {
  Exported e(testing::primitive<int32_t>("i", "v", {1, 2, 3}));
  ArrayOwner moved(std::move(e.array));
  EXPECT_FALSE(e.array.valid());
  EXPECT_TRUE(moved.valid());
  moved.reset();
  EXPECT_FALSE(moved.valid());
}

TEST(ArrayView, ListRangesHonourOffsetsThatDoNotStartAtZero) {
  auto values = testing::primitive<uint16_t>("S", "item", {9, 9, 1, 2, 3, 4, 5});
  auto lst = testing::list("l", values, {2, 4, 7});
  Exported e(lst);
  const ArrayView v = e.view();
  EXPECT_EQ(v.list_range(0), (std::pair<int64_t, int64_t>{2, 4}));
  EXPECT_EQ(v.list_range(1), (std::pair<int64_t, int64_t>{4, 7}));
  EXPECT_EQ(v.child(0).integer(2), 1);
}

TEST(ArrayView, SlicedArraysApplyTheirOffset) {
  auto node = testing::primitive<int32_t>("i", "v", {10, 20, 30, 40});
  node->offset = 1;
  node->length = 3;
  testing::set_nulls(*node, {1});
  Exported e(node);
  const ArrayView v = e.view();
  EXPECT_EQ(v.integer(0), 20);
  EXPECT_TRUE(v.is_null(1));
  EXPECT_FALSE(v.is_null(2));
  EXPECT_EQ(v.integer(2), 40);
}

TEST(ArrayView, RejectsOffsetsPastTheChild) {
  auto lst = testing::list("l", testing::primitive<uint16_t>("S", "item", {1, 2, 3}), {0, 2, 5});
  Exported e(lst);
  try {
    e.view();
    FAIL() << "expected ImportError";
  } catch (const ImportError& err) {
    EXPECT_NE(std::string(err.what()).find("offsets reach 5"), std::string::npos) << err.what();
  }
}

TEST(ArrayView, RejectsDecreasingOffsets) {
  auto lst = testing::list("l", testing::primitive<uint16_t>("S", "item", {1, 2, 3}), {0, 3, 1});
  Exported e(lst);
  EXPECT_THROW(e.view(), ImportError);
}

TEST(ArrayView, RejectsWrongBufferCountAndMissingData) {
  auto node = testing::primitive<int32_t>("i", "v", {1, 2});
  node->buffers.pop_back();
  Exported missing_buffer(node);
  EXPECT_THROW(missing_buffer.view(), ImportError);

  auto null_data = testing::primitive<int32_t>("i", "v", {1, 2});
  null_data->buffers[1] = std::nullopt;
  Exported no_data(null_data);
  EXPECT_THROW(no_data.view(), ImportError);
}

TEST(ArrayView, RejectsNullCountWithoutValidity) {
  auto node = testing::primitive<int32_t>("i", "v", {1, 2});
  node->null_count = 1;
  Exported e(node);
  EXPECT_THROW(e.view(), ImportError);
}

TEST(ArrayView, RejectsShortStructChildren) {
  auto s = testing::structure("s", {testing::primitive<int32_t>("i", "a", {1})}, 2);
  Exported e(s);
  EXPECT_THROW(e.view(), ImportError);
}

TEST(ArrayView, TypedAccessorsRefuseTheWrongType) {
  Exported e(testing::strings("s", {"ab", "c"}));
  const ArrayView v = e.view();
  EXPECT_EQ(v.bytes(0), "ab");
  EXPECT_THROW(v.integer(0), ImportError);
  EXPECT_THROW(v.list_range(0), ImportError);
}

}  // namespace
}  // namespace loaderbench
