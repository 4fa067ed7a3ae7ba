#include "loaderbench/ome_importer.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "arrow_test_builder.h"

namespace loaderbench {
namespace {

using testing::NodePtr;
using testing::TestImage;

ImportSummary import_batch(const NodePtr& batch) {
  SchemaOwner schema;
  ArrayOwner array;
  testing::export_schema(batch, schema.get());
  testing::export_array(batch, array.get());
  OmeImporter importer;
  importer.add_batch(*schema.get(), *array.get());
  return importer.summary();
}

std::string import_error(const NodePtr& batch) {
  try {
    import_batch(batch);
  } catch (const ImportError& err) {
    return err.what();
  }
  return "<no error>";
}

NodePtr image_field(const NodePtr& batch, const std::string& name) { return testing::find(testing::find(batch, "ome_image"), name); }

TEST(OmeImporter, SummarisesAValidBatch) {
  const ImportSummary s = import_batch(testing::ome_batch({{1, 1, 4, 5}, {2, 3, 4, 5}, {1, 1, 4, 5}}));
  EXPECT_EQ(s.rows, 3);
  EXPECT_EQ(s.batches, 1);
  EXPECT_TRUE(s.has_planes);
  EXPECT_TRUE(s.has_chunks);
  EXPECT_EQ(s.chunk_encoding, "list");
  EXPECT_EQ(s.planes, 1 + 6 + 1);
  EXPECT_EQ(s.chunks, 8);
  EXPECT_EQ(s.voxels, 20 + 120 + 20);
  EXPECT_EQ(s.payload_bytes, 2 * 2 * 160);  // planes and chunks, uint16
  ASSERT_EQ(s.shapes.size(), 2u);
  EXPECT_EQ((s.shapes.at({1, 1, 1, 4, 5})), 2);
  EXPECT_EQ((s.shapes.at({1, 2, 3, 4, 5})), 1);
  EXPECT_EQ(s.declared_types, (std::set<std::string>{"uint16"}));
  EXPECT_EQ(s.stored_types, (std::set<std::string>{"uint16"}));
}

TEST(OmeImporter, AcceptsPlanesOnlyOrChunksOnly) {
  TestImage planes_only{1, 1, 3, 3, true, false};
  TestImage chunks_only{1, 1, 3, 3, false, true};
  EXPECT_EQ(import_batch(testing::ome_batch({planes_only, chunks_only})).rows, 2);
}

TEST(OmeImporter, HonoursASlicedBatch) {
  NodePtr batch = testing::ome_batch({{1, 1, 2, 2}, {1, 1, 3, 3}, {1, 1, 4, 4}});
  batch->offset = 1;
  batch->length = 2;
  const ImportSummary s = import_batch(batch);
  EXPECT_EQ(s.rows, 2);
  EXPECT_EQ((s.shapes.count({1, 1, 1, 2, 2})), 0u);
  EXPECT_EQ((s.shapes.at({1, 1, 1, 3, 3})), 1);
}

TEST(OmeImporter, RejectsAMissingOrWrongColumn) {
  NodePtr batch = testing::ome_batch({{}});
  testing::find(batch, "ome_image")->name = "image";
  EXPECT_NE(import_error(batch).find("no column 'ome_image'"), std::string::npos);

  NodePtr ints = testing::structure("", {testing::primitive<int64_t>("l", "ome_image", {1})}, 1);
  EXPECT_NE(import_error(ints).find("must be an OME-Arrow struct"), std::string::npos);
}

TEST(OmeImporter, RejectsANullImage) {
  NodePtr batch = testing::ome_batch({{}, {}});
  testing::set_nulls(*testing::find(batch, "ome_image"), {1});
  EXPECT_NE(import_error(batch).find("row 1: image is null"), std::string::npos);
}

TEST(OmeImporter, RejectsPixelCountThatDoesNotMatchTheShape) {
  NodePtr batch = testing::ome_batch({{1, 1, 4, 5}});
  testing::find(image_field(batch, "pixels_meta"), "size_x")->buffers[1] = testing::to_bytes(std::vector<int32_t>{6});
  const std::string message = import_error(batch);
  EXPECT_NE(message.find("row 0: plane 0 has 20 pixels, but size_y*size_x = 24"), std::string::npos) << message;
}

TEST(OmeImporter, RejectsChunksThatDoNotCoverTheImage) {
  NodePtr batch = testing::ome_batch({{1, 1, 4, 5, false, true}});
  NodePtr chunk = image_field(batch, "chunks")->children[0];
  testing::find(chunk, "shape_y")->buffers[1] = testing::to_bytes(std::vector<int32_t>{2});
  EXPECT_NE(import_error(batch).find("chunk 0 has 20 pixels, but its shape needs 10"), std::string::npos);
}

TEST(OmeImporter, RejectsAPlaneOutsideTheImage) {
  NodePtr batch = testing::ome_batch({{1, 1, 2, 2, true, false}});
  NodePtr plane = image_field(batch, "planes")->children[0];
  testing::find(plane, "z")->buffers[1] = testing::to_bytes(std::vector<int32_t>{3});
  EXPECT_NE(import_error(batch).find("lies outside the declared image"), std::string::npos);
}

TEST(OmeImporter, RejectsAWrongPlaneCount) {
  NodePtr batch = testing::ome_batch({{1, 2, 2, 2, true, false}});
  testing::find(image_field(batch, "pixels_meta"), "size_z")->buffers[1] = testing::to_bytes(std::vector<int32_t>{3});
  EXPECT_NE(import_error(batch).find("2 planes, but t*c*z = 3"), std::string::npos);
}

TEST(OmeImporter, RejectsPixelOffsetsOutOfRange) {
  NodePtr batch = testing::ome_batch({{1, 1, 2, 2, true, false}});
  NodePtr pixels = testing::find(image_field(batch, "planes")->children[0], "pixels");
  pixels->buffers[1] = testing::to_bytes(std::vector<int32_t>{0, 400});
  EXPECT_NE(import_error(batch).find("offsets reach 400"), std::string::npos);
}

TEST(OmeImporter, RejectsAnImageWithNoPixels) {
  NodePtr batch = testing::ome_batch({{1, 1, 2, 2, false, false}});
  EXPECT_NE(import_error(batch).find("no pixel data"), std::string::npos);
}

TEST(OmeImporter, RejectsNonPositiveSizes) {
  NodePtr batch = testing::ome_batch({{1, 1, 2, 2}});
  testing::find(image_field(batch, "pixels_meta"), "size_y")->buffers[1] = testing::to_bytes(std::vector<int32_t>{0});
  EXPECT_NE(import_error(batch).find("non-positive size_y"), std::string::npos) << import_error(batch);
}

TEST(OmeImporter, RejectsAChunkCoordinateThatWouldOverflow) {
  NodePtr batch = testing::ome_batch({{1, 1, 4, 5, false, true}});
  NodePtr chunk = image_field(batch, "chunks")->children[0];
  *testing::find(chunk, "z") = *testing::primitive("l", "z", std::vector<int64_t>{INT64_MAX - 10});
  *testing::find(chunk, "shape_z") = *testing::primitive("l", "shape_z", std::vector<int64_t>{20});
  const std::string message = import_error(batch);
  EXPECT_NE(message.find("lies outside the declared image"), std::string::npos) << message;
}

TEST(OmeImporter, RejectsDuplicatePlanes) {
  NodePtr batch = testing::ome_batch({{1, 2, 2, 2, true, false}});
  NodePtr plane = image_field(batch, "planes")->children[0];
  testing::find(plane, "z")->buffers[1] = testing::to_bytes(std::vector<int32_t>{0, 0});
  const std::string message = import_error(batch);
  EXPECT_NE(message.find("appears twice"), std::string::npos) << message;
}

TEST(OmeImporter, RejectsOverlappingChunksWhoseCountsAddUp) {
  NodePtr batch = testing::ome_batch({{1, 2, 4, 5, false, true}});
  NodePtr chunk = image_field(batch, "chunks")->children[0];
  testing::find(chunk, "z")->buffers[1] = testing::to_bytes(std::vector<int32_t>{0, 0});
  const std::string message = import_error(batch);
  EXPECT_NE(message.find("overlap"), std::string::npos) << message;
}

TEST(OmeImporter, RejectsNullsInFieldsItReads) {
  NodePtr batch = testing::ome_batch({{1, 1, 2, 2}});
  testing::set_nulls(*testing::find(image_field(batch, "pixels_meta"), "size_x"), {0});
  EXPECT_NE(import_error(batch).find("pixels_meta: size_x is null"), std::string::npos) << import_error(batch);

  batch = testing::ome_batch({{1, 1, 2, 2, true, false}});
  NodePtr values = testing::find(image_field(batch, "planes")->children[0], "pixels")->children[0];
  testing::set_nulls(*values, {3});
  EXPECT_NE(import_error(batch).find("plane 0 has null pixel values"), std::string::npos) << import_error(batch);
}

TEST(OmeImporter, RejectsSizesBeyondInt32) {
  NodePtr batch = testing::ome_batch({{1, 1, 2, 2}});
  *testing::find(image_field(batch, "pixels_meta"), "size_z") =
      *testing::primitive("l", "size_z", std::vector<int64_t>{(int64_t{1} << 32) + 1});
  EXPECT_NE(import_error(batch).find("size_z = 4294967297 exceeds 2^31 - 1"), std::string::npos) << import_error(batch);
}

TEST(OmeImporter, RejectsImagesAboveMaxSampleBytes) {
  NodePtr batch = testing::ome_batch({{1, 1, 4, 5}});
  SchemaOwner schema;
  ArrayOwner array;
  testing::export_schema(batch, schema.get());
  testing::export_array(batch, array.get());
  OmeImporter importer("ome_image", nullptr, 39);  // the image needs 4 * 5 * 2 = 40 bytes
  try {
    importer.add_batch(*schema.get(), *array.get());
    FAIL() << "expected ImportError";
  } catch (const ImportError& err) {
    EXPECT_NE(std::string(err.what()).find("exceeds max_sample_bytes=39"), std::string::npos) << err.what();
  }
}

TEST(OmeImporter, RejectsDictionaryEncodedFields) {
  NodePtr batch = testing::ome_batch({{1, 1, 2, 2}});
  SchemaOwner schema;
  ArrayOwner array;
  testing::export_schema(batch, schema.get());
  testing::export_array(batch, array.get());
  // pixels_meta.type as if dictionary-encoded: its format string is then the index type, not the values'.
  ArrowSchema dictionary_schema{};
  ArrowArray dictionary_array{};
  ArrowSchema* type_schema = schema->children[1]->children[0]->children[5];
  ArrowArray* type_array = array->children[1]->children[0]->children[5];
  ASSERT_STREQ(type_schema->name, "type");
  type_schema->dictionary = &dictionary_schema;
  type_array->dictionary = &dictionary_array;
  OmeImporter importer;
  try {
    importer.add_batch(*schema.get(), *array.get());
    FAIL() << "expected ImportError";
  } catch (const ImportError& err) {
    EXPECT_NE(std::string(err.what()).find("dictionary-encoded"), std::string::npos) << err.what();
  }
  type_schema->dictionary = nullptr;
  type_array->dictionary = nullptr;
}

using testing::FakeStream;

TEST(ImportStream, ReadsEveryBatch) {
  const ImportSummary s =
      import_ome_stream(FakeStream::make({testing::ome_batch({{}, {}}), testing::ome_batch({{1, 1, 3, 3}})}));
  EXPECT_EQ(s.rows, 3);
  EXPECT_EQ(s.batches, 2);
}

TEST(ImportStream, SurfacesProducerErrors) {
  try {
    import_ome_stream(FakeStream::make({testing::ome_batch({{}}), testing::ome_batch({{}})}, 1));
    FAIL() << "expected ImportError";
  } catch (const ImportError& err) {
    EXPECT_NE(std::string(err.what()).find("get_next failed (errno 5): disk on fire"), std::string::npos) << err.what();
  }
}

TEST(ImportStream, RefusesAnEmptyTable) {
  NodePtr empty = testing::ome_batch({});
  EXPECT_THROW(import_ome_stream(FakeStream::make({empty})), ImportError);
}

TEST(ImportStream, RefusesAReleasedStream) { EXPECT_THROW(import_ome_stream(StreamOwner()), ImportError); }

}  // namespace
}  // namespace loaderbench
