#include "loaderbench/ome_importer.h"

#include <string>

namespace loaderbench {
namespace {

std::string row_label(int64_t row) { return "row " + std::to_string(row); }

const ArrayView& require(const ArrayView& parent, std::string_view name) {
  const ArrayView* child = parent.child(name);
  if (child == nullptr) throw ImportError(parent.path() + ": missing field '" + std::string(name) + "'");
  return *child;
}

const ArrayView& require_integer(const ArrayView& parent, std::string_view name) {
  const ArrayView& child = require(parent, name);
  if (!is_integer(child.type())) {
    throw ImportError(child.path() + ": expected an integer field, found " + type_name(child.type()));
  }
  return child;
}

bool is_list(ArrowType type) {
  return type == ArrowType::kList || type == ArrowType::kLargeList || type == ArrowType::kFixedSizeList;
}
bool is_string(ArrowType type) { return type == ArrowType::kString || type == ArrowType::kLargeString; }
bool is_binary(ArrowType type) { return type == ArrowType::kBinary || type == ArrowType::kLargeBinary; }

/// list<struct<...>> field: returns the struct child, checking the shape of the type.
const ArrayView& list_of_struct(const ArrayView& list) {
  if (!is_list(list.type()) || list.child(0).type() != ArrowType::kStruct) {
    throw ImportError(list.path() + ": expected list<struct>, found " + type_name(list.type()));
  }
  return list.child(0);
}

/// A pixels field: list<primitive>; returns the element array.
const ArrayView& pixel_values(const ArrayView& pixels) {
  if (!is_list(pixels.type()) || primitive_size(pixels.child(0).type()) == 0) {
    throw ImportError(pixels.path() + ": expected list<uint16> pixels, found " + type_name(pixels.type()));
  }
  return pixels.child(0);
}

int dtype_size(const std::string& dtype) {
  if (dtype == "uint8" || dtype == "int8") return 1;
  if (dtype == "uint16" || dtype == "int16" || dtype == "float16") return 2;
  if (dtype == "uint32" || dtype == "int32" || dtype == "float32" || dtype == "float") return 4;
  if (dtype == "uint64" || dtype == "int64" || dtype == "float64" || dtype == "double") return 8;
  return 0;
}

int64_t checked_product(const std::array<int64_t, 5>& dims, const std::string& where) {
  int64_t product = 1;
  for (int64_t d : dims) {
    if (__builtin_mul_overflow(product, d, &product)) throw ImportError(where + ": image size overflows");
  }
  return product;
}

bool element_type(ArrowType type, PixelType* out) {
  switch (type) {
    case ArrowType::kUint8: *out = PixelType::kUint8; return true;
    case ArrowType::kUint16: *out = PixelType::kUint16; return true;
    case ArrowType::kFloat32: *out = PixelType::kFloat32; return true;
    default: return false;
  }
}

Codec parse_codec(const std::string& name, const std::string& where) {
  if (name.empty() || name == "none") return Codec::kNone;
  if (name == "zstd") return Codec::kZstd;
  if (name == "lz4") return Codec::kLz4;
  throw ImportError(where + " uses unsupported compression '" + name + "'");
}

/// Whether the pieces form one C-contiguous (C, Z, H, W) block: full planes in (c, z) order, back to back.
const uint8_t* contiguous_run(const PixelPiece* pieces, int32_t n, const ImageLocation& image) {
  if (n != image.channels * image.depth) return nullptr;
  const uint8_t* expected = pieces[0].data;
  for (int32_t k = 0; k < n; ++k) {
    const PixelPiece& p = pieces[k];
    if (p.codec != Codec::kNone || p.type != image.stored || p.data != expected || p.c != k / image.depth ||
        p.z != k % image.depth || p.depth != 1 || p.y != 0 || p.x != 0 || p.height != image.height ||
        p.width != image.width) {
      return nullptr;
    }
    expected += p.nbytes;
  }
  return pieces[0].data;
}

}  // namespace

OmeImporter::OmeImporter(std::string column, PixelIndex* index) : index_(index) { summary_.column = std::move(column); }

void OmeImporter::add_batch(const ArrowSchema& schema, const ArrowArray& batch) {
  const ArrayView table = ArrayView::make(&schema, &batch, "batch");
  if (table.type() != ArrowType::kStruct) throw ImportError("a record batch must be a struct array");
  const ArrayView* image = table.child(summary_.column);
  if (image == nullptr) throw ImportError("no column '" + summary_.column + "' in the table");
  if (image->type() != ArrowType::kStruct) {
    throw ImportError("column '" + summary_.column + "' must be an OME-Arrow struct, found " + type_name(image->type()));
  }
  const ArrayView& meta = require(*image, "pixels_meta");
  if (meta.type() != ArrowType::kStruct) throw ImportError(meta.path() + ": must be a struct");
  for (const char* size : {"size_x", "size_y", "size_z", "size_c", "size_t"}) require_integer(meta, size);
  if (!is_string(require(meta, "type").type())) throw ImportError(meta.path() + ".type: must be a string");

  const ArrayView* planes = image->child("planes");
  const ArrayView* chunks = image->child("chunks");
  if (planes != nullptr && planes->type() == ArrowType::kNull) planes = nullptr;
  if (chunks != nullptr && chunks->type() == ArrowType::kNull) chunks = nullptr;
  if (planes == nullptr && chunks == nullptr) {
    throw ImportError(image->path() + ": neither 'planes' nor 'chunks' present: not an OME-Arrow image");
  }
  if (planes != nullptr) {
    const ArrayView& plane = list_of_struct(*planes);
    for (const char* f : {"z", "t", "c"}) require_integer(plane, f);
    pixel_values(require(plane, "pixels"));
  }
  if (chunks != nullptr) {
    const ArrayView& chunk = list_of_struct(*chunks);
    for (const char* f : {"t", "c", "z", "y", "x", "shape_z", "shape_y", "shape_x"}) require_integer(chunk, f);
    if (chunk.child("pixel_bytes") != nullptr) {
      if (!is_binary(chunk.child("pixel_bytes")->type())) throw ImportError(chunk.path() + ".pixel_bytes: must be binary");
      summary_.chunk_encoding = "bytes";
    } else {
      pixel_values(require(chunk, "pixels"));
      summary_.chunk_encoding = "list";
    }
  }
  for (int64_t row = 0; row < table.length(); ++row) check_row(*image, table.child_row(row), summary_.rows + row);
  summary_.rows += table.length();
  summary_.batches += 1;
}

void OmeImporter::check_row(const ArrayView& image, int64_t image_index, int64_t global_row) {
  const std::string where = row_label(global_row);
  if (image.is_null(image_index)) throw ImportError(where + ": image is null");
  // Indices below follow the C Data Interface: a struct's offset applies to its children (child_row), a
  // list's offsets give indices into its child.
  const int64_t row = image.child_row(image_index);
  const ArrayView& meta = *image.child("pixels_meta");
  if (meta.is_null(row)) throw ImportError(where + ": pixels_meta is null");
  const int64_t meta_row = meta.child_row(row);
  const std::array<int64_t, 5> shape = {
      meta.child("size_t")->integer(meta_row), meta.child("size_c")->integer(meta_row),
      meta.child("size_z")->integer(meta_row), meta.child("size_y")->integer(meta_row),
      meta.child("size_x")->integer(meta_row)};
  for (int64_t d : shape) {
    if (d <= 0) throw ImportError(where + ": pixels_meta declares a non-positive size");
  }
  const int64_t voxels = checked_product(shape, where);
  const int64_t plane_size = shape[3] * shape[4];
  const std::string declared_name(meta.child("type")->bytes(meta_row));
  summary_.declared_types.insert(declared_name);
  ImageLocation location;
  if (index_ != nullptr) {
    if (!parse_pixel_type(declared_name, &location.declared)) {
      throw ImportError(where + ": pixel type '" + declared_name + "' is not supported (uint8, uint16, float32)");
    }
    if (shape[0] != 1) throw ImportError(where + ": time series (size_t > 1) are not supported by the loader");
    location.first_piece = static_cast<int64_t>(index_->pieces.size());
    location.channels = static_cast<int32_t>(shape[1]);
    location.depth = static_cast<int32_t>(shape[2]);
    location.height = static_cast<int32_t>(shape[3]);
    location.width = static_cast<int32_t>(shape[4]);
  }
  bool recorded_planes = false;
  summary_.shapes[shape] += 1;
  summary_.voxels += voxels;

  bool any_pixels = false;
  if (const ArrayView* planes = image.child("planes"); planes != nullptr && planes->type() != ArrowType::kNull &&
                                                       !planes->is_null(row)) {
    const auto [begin, end] = planes->list_range(row);
    const ArrayView& plane = planes->child(0);
    const ArrayView& pixels = *plane.child("pixels");
    if (end > begin) {
      any_pixels = true;
      summary_.has_planes = true;
      if (end - begin != shape[0] * shape[1] * shape[2]) {
        throw ImportError(where + ": " + std::to_string(end - begin) + " planes, but t*c*z = " +
                          std::to_string(shape[0] * shape[1] * shape[2]));
      }
    }
    for (int64_t p = begin; p < end; ++p) {
      const int64_t q = plane.child_row(p);
      if (plane.is_null(p) || pixels.is_null(q)) throw ImportError(where + ": plane " + std::to_string(p - begin) + " is null");
      const int64_t z = plane.child("z")->integer(q), t = plane.child("t")->integer(q), c = plane.child("c")->integer(q);
      if (z < 0 || z >= shape[2] || t < 0 || t >= shape[0] || c < 0 || c >= shape[1]) {
        throw ImportError(where + ": plane (z=" + std::to_string(z) + ", t=" + std::to_string(t) + ", c=" +
                          std::to_string(c) + ") lies outside the declared image");
      }
      const auto [pb, pe] = pixels.list_range(q);
      if (pe - pb != plane_size) {
        throw ImportError(where + ": plane " + std::to_string(p - begin) + " has " + std::to_string(pe - pb) +
                          " pixels, but size_y*size_x = " + std::to_string(plane_size));
      }
      const ArrayView& values = pixels.child(0);
      summary_.stored_types.insert(type_name(values.type()));
      summary_.payload_bytes += plane_size * primitive_size(values.type());
      summary_.planes += 1;
      if (index_ != nullptr) {
        PixelPiece piece;
        if (!element_type(values.type(), &piece.type)) {
          throw ImportError(where + ": pixels of type " + type_name(values.type()) + " are not supported");
        }
        piece.data = values.primitive_data() + pb * primitive_size(values.type());
        piece.nbytes = plane_size * primitive_size(values.type());
        piece.c = static_cast<int32_t>(c);
        piece.z = static_cast<int32_t>(z);
        piece.height = static_cast<int32_t>(shape[3]);
        piece.width = static_cast<int32_t>(shape[4]);
        index_->pieces.push_back(piece);
        recorded_planes = true;
      }
    }
  }

  if (const ArrayView* chunks = image.child("chunks"); chunks != nullptr && chunks->type() != ArrowType::kNull &&
                                                       !chunks->is_null(row)) {
    const auto [begin, end] = chunks->list_range(row);
    const ArrayView& chunk = chunks->child(0);
    int64_t covered = 0;
    if (end > begin) {
      any_pixels = true;
      summary_.has_chunks = true;
    }
    for (int64_t k = begin; k < end; ++k) {
      const std::string cw = where + ": chunk " + std::to_string(k - begin);
      if (chunk.is_null(k)) throw ImportError(cw + " is null");
      const int64_t q = chunk.child_row(k);
      auto get = [&](const char* f) { return chunk.child(f)->integer(q); };
      const int64_t t = get("t"), c = get("c"), z = get("z"), y = get("y"), x = get("x");
      const int64_t sz = get("shape_z"), sy = get("shape_y"), sx = get("shape_x");
      if (sz <= 0 || sy <= 0 || sx <= 0) throw ImportError(cw + " has a non-positive shape");
      if (t < 0 || t >= shape[0] || c < 0 || c >= shape[1] || z < 0 || y < 0 || x < 0 || z + sz > shape[2] ||
          y + sy > shape[3] || x + sx > shape[4]) {
        throw ImportError(cw + " lies outside the declared image");
      }
      const int64_t count = sz * sy * sx;
      covered += count;
      PixelPiece piece;
      piece.c = static_cast<int32_t>(c);
      piece.z = static_cast<int32_t>(z);
      piece.y = static_cast<int32_t>(y);
      piece.x = static_cast<int32_t>(x);
      piece.depth = static_cast<int32_t>(sz);
      piece.height = static_cast<int32_t>(sy);
      piece.width = static_cast<int32_t>(sx);
      if (const ArrayView* payload = chunk.child("pixel_bytes"); payload != nullptr) {
        if (payload->is_null(q)) throw ImportError(cw + " has null pixel_bytes");
        const ArrayView* dtype_field = chunk.child("dtype");
        const ArrayView* codec_field = chunk.child("compression");
        const std::string dtype = dtype_field && !dtype_field->is_null(q) ? std::string(dtype_field->bytes(q))
                                                                          : std::string(meta.child("type")->bytes(meta_row));
        const std::string codec = codec_field && !codec_field->is_null(q) ? std::string(codec_field->bytes(q))
                                                                          : std::string("none");
        const int itemsize = dtype_size(dtype);
        if (itemsize == 0) throw ImportError(cw + " has unsupported dtype '" + dtype + "'");
        const int64_t nbytes = static_cast<int64_t>(payload->bytes(q).size());
        // Compressed payloads are checked when decompressed; raw ones must hold exactly the chunk.
        if ((codec.empty() || codec == "none") && nbytes != count * itemsize) {
          throw ImportError(cw + " has " + std::to_string(nbytes) + " bytes, but its shape needs " +
                            std::to_string(count * itemsize));
        }
        summary_.stored_types.insert(dtype);
        summary_.compressions.insert(codec.empty() ? "none" : codec);
        summary_.payload_bytes += nbytes;
        if (index_ != nullptr) {
          if (!parse_pixel_type(dtype, &piece.type)) throw ImportError(cw + " has unsupported dtype '" + dtype + "'");
          piece.codec = parse_codec(codec, cw);
          piece.data = reinterpret_cast<const uint8_t*>(payload->bytes(q).data());
          piece.nbytes = nbytes;
        }
      } else {
        const ArrayView& pixels = *chunk.child("pixels");
        if (pixels.is_null(q)) throw ImportError(cw + " has null pixels");
        const auto [pb, pe] = pixels.list_range(q);
        if (pe - pb != count) {
          throw ImportError(cw + " has " + std::to_string(pe - pb) + " pixels, but its shape needs " +
                            std::to_string(count));
        }
        const ArrayView& values = pixels.child(0);
        summary_.stored_types.insert(type_name(values.type()));
        summary_.payload_bytes += count * primitive_size(values.type());
        if (index_ != nullptr) {
          if (!element_type(values.type(), &piece.type)) {
            throw ImportError(cw + ": pixels of type " + type_name(values.type()) + " are not supported");
          }
          piece.data = values.primitive_data() + pb * primitive_size(values.type());
          piece.nbytes = count * primitive_size(values.type());
        }
      }
      summary_.chunks += 1;
      if (index_ != nullptr && !recorded_planes) index_->pieces.push_back(piece);
    }
    if (end > begin && covered != voxels) {
      throw ImportError(where + ": chunks hold " + std::to_string(covered) + " pixels, but the declared shape has " +
                        std::to_string(voxels));
    }
  }
  if (!any_pixels) throw ImportError(where + ": no pixel data (planes and chunks are empty)");
  if (index_ != nullptr) {
    location.num_pieces = static_cast<int32_t>(static_cast<int64_t>(index_->pieces.size()) - location.first_piece);
    const PixelPiece* first = index_->pieces.data() + location.first_piece;
    location.stored = first->type;
    location.contiguous = contiguous_run(first, location.num_pieces, location);
    index_->images.push_back(location);
  }
}

void consume_stream(StreamOwner& stream, SchemaOwner& schema, const std::function<void(ArrayOwner&&)>& on_batch) {
  if (!stream.valid()) throw ImportError("the Arrow stream is already released");
  auto stream_error = [&](const char* what, int code) {
    const char* message = stream->get_last_error ? stream->get_last_error(stream.get()) : nullptr;
    return ImportError(std::string(what) + " failed (errno " + std::to_string(code) + ")" +
                       (message ? std::string(": ") + message : std::string()));
  };
  schema.reset();
  if (int code = stream->get_schema(stream.get(), schema.get()); code != 0) throw stream_error("get_schema", code);
  while (true) {
    ArrayOwner batch;
    if (int code = stream->get_next(stream.get(), batch.get()); code != 0) throw stream_error("get_next", code);
    if (!batch.valid()) return;  // end of stream
    on_batch(std::move(batch));
  }
}

ImportSummary import_ome_stream(StreamOwner stream, const std::string& column) {
  SchemaOwner schema;
  OmeImporter importer(column);
  consume_stream(stream, schema, [&](ArrayOwner&& batch) { importer.add_batch(*schema.get(), *batch.get()); });
  if (importer.summary().rows == 0) throw ImportError("the table has no rows");
  return importer.summary();
}

}  // namespace loaderbench
