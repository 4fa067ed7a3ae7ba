#include "loaderbench/ome_importer.h"

#include <limits>
#include <string>
#include <vector>

#include "loaderbench/decompress.h"

namespace loaderbench {
namespace {

/// Where in the table a check looks ("row 7", "row 7: chunk 2"), spelled out only when an error is thrown: the
/// checks run on every row of every block a streaming epoch reads, and building these strings for each row and
/// chunk cost as much as the checks themselves.
class Label {
 public:
  explicit Label(int64_t row) : row_(row) {}
  Label(const Label& row, const char* part, int64_t index = -1) : row_(row.row_), part_(part), index_(index) {}

  std::string str() const {
    std::string out = "row " + std::to_string(row_);
    if (part_ != nullptr) out += std::string(": ") + part_;
    if (index_ >= 0) out += " " + std::to_string(index_);
    return out;
  }
  friend std::string operator+(const Label& label, const std::string& text) { return label.str() + text; }
  friend std::string operator+(const Label& label, const char* text) { return label.str() + text; }

 private:
  int64_t row_;
  const char* part_ = nullptr;
  int64_t index_ = -1;
};

bool is_list(ArrowType type) {
  return type == ArrowType::kList || type == ArrowType::kLargeList || type == ArrowType::kFixedSizeList;
}
bool is_string(ArrowType type) { return type == ArrowType::kString || type == ArrowType::kLargeString; }
bool is_binary(ArrowType type) { return type == ArrowType::kBinary || type == ArrowType::kLargeBinary; }

ImportError dictionary_error(const ArrayView& field) {
  return ImportError(field.path() + ": dictionary-encoded fields are not supported; decode them first "
                     "(pyarrow: table.cast to the plain type, or pyarrow.compute.dictionary_decode)");
}

const ArrayView& require(const ArrayView& parent, std::string_view name) {
  const ArrayView* child = parent.child(name);
  if (child == nullptr) throw ImportError(parent.path() + ": missing field '" + std::string(name) + "'");
  if (child->type() == ArrowType::kDictionary) throw dictionary_error(*child);
  return *child;
}

const ArrayView& require_string(const ArrayView& parent, std::string_view name) {
  const ArrayView& child = require(parent, name);
  if (!is_string(child.type())) {
    throw ImportError(child.path() + ": expected a string field, found " + type_name(child.type()));
  }
  return child;
}

const ArrayView& require_integer(const ArrayView& parent, std::string_view name) {
  const ArrayView& child = require(parent, name);
  if (!is_integer(child.type())) {
    throw ImportError(child.path() + ": expected an integer field, found " + type_name(child.type()));
  }
  return child;
}


/// list<struct<...>> field: returns the struct child, checking the shape of the type.
const ArrayView& list_of_struct(const ArrayView& list) {
  if (list.type() == ArrowType::kDictionary) throw dictionary_error(list);
  if (!is_list(list.type()) || list.child(0).type() != ArrowType::kStruct) {
    throw ImportError(list.path() + ": expected list<struct>, found " + type_name(list.type()));
  }
  return list.child(0);
}

/// A pixels field: list<primitive>; returns the element array.
const ArrayView& pixel_values(const ArrayView& pixels) {
  if (pixels.type() == ArrowType::kDictionary) throw dictionary_error(pixels);
  if (is_list(pixels.type()) && pixels.child(0).type() == ArrowType::kDictionary) throw dictionary_error(pixels.child(0));
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

int64_t checked_product(const std::array<int64_t, 5>& dims, const Label& where) {
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
    case ArrowType::kInt16: *out = PixelType::kInt16; return true;
    case ArrowType::kInt32: *out = PixelType::kInt32; return true;
    case ArrowType::kFloat32: *out = PixelType::kFloat32; return true;
    default: return false;
  }
}

Codec parse_codec(const std::string& name, const Label& where) {
  if (name.empty() || name == "none") return Codec::kNone;
  if (name == "zstd") return Codec::kZstd;
  if (name == "lz4") return Codec::kLz4;
  throw ImportError(where + " uses unsupported compression '" + name + "'");
}

/// Whether the pieces form one C-contiguous (C, Z, H, W) block: full planes in (c, z) order, back to back.
const uint8_t* contiguous_run(const PixelPiece* pieces, int32_t n, const ImageLocation& image) {
  if (n != image.channels * image.depth) return nullptr;
  // A zero-copy view is a typed tensor: its first element must be aligned for its dtype.
  if (reinterpret_cast<uintptr_t>(pieces[0].data) % pixel_size(image.stored) != 0) return nullptr;
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

/// A producer's error as one line: pyarrow appends the Python traceback of an exception raised inside a
/// generator-backed reader ("... Detail: Python exception: Traceback ..."), which belongs in no message of ours.
std::string producer_message(std::string_view text) {
  if (const size_t detail = text.find(" Detail: Python exception"); detail != std::string_view::npos) {
    text = text.substr(0, detail);
  }
  if (const size_t newline = text.find('\n'); newline != std::string_view::npos) text = text.substr(0, newline);
  while (!text.empty() && (text.back() == ' ' || text.back() == '.')) text.remove_suffix(1);
  return std::string(text);
}

}  // namespace

OmeImporter::OmeImporter(std::string column, PixelIndex* index, int64_t max_sample_bytes)
    : index_(index), max_sample_bytes_(max_sample_bytes) {
  summary_.column = std::move(column);
  if (max_sample_bytes_ <= 0) throw ImportError("max_sample_bytes must be > 0");
}

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
  require_string(meta, "type");

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
      const ArrayView& payload = *chunk.child("pixel_bytes");
      if (payload.type() == ArrowType::kDictionary) throw dictionary_error(payload);
      if (!is_binary(payload.type())) throw ImportError(chunk.path() + ".pixel_bytes: must be binary");
      for (const char* f : {"dtype", "compression"}) {
        if (chunk.child(f) != nullptr) require_string(chunk, f);
      }
      summary_.chunk_encoding = "bytes";
    } else {
      pixel_values(require(chunk, "pixels"));
      summary_.chunk_encoding = "list";
    }
  }
  if (index_ == nullptr) scratch_index_ = PixelIndex();  // its pointers would dangle once this batch is gone
  for (int64_t row = 0; row < table.length(); ++row) check_row(*image, table.child_row(row), summary_.rows + row);
  summary_.rows += table.length();
  summary_.batches += 1;
}

namespace {

/// Integer field `name` of struct element `q`, refusing nulls.
int64_t integer_field(const ArrayView& parent, std::string_view name, int64_t q, const Label& where) {
  const ArrayView& field = *parent.child(name);
  if (field.is_null(q)) throw ImportError(where + ": " + std::string(name) + " is null");
  return field.integer(q);
}

/// Optional string field of struct element `q`: `fallback` when the field is absent or null (the OME-Arrow
/// writer leaves dtype and compression null for "as declared" and "none").
std::string string_field(const ArrayView& parent, std::string_view name, int64_t q, const std::string& fallback) {
  const ArrayView* field = parent.child(name);
  if (field == nullptr || field->is_null(q)) return fallback;
  return std::string(field->bytes(q));
}

/// A box of voxels of one (t, c): what a chunk or plane covers.
struct Box {
  int64_t t, c, z, y, x, depth, height, width;
  bool overlaps(const Box& o) const {
    return t == o.t && c == o.c && z < o.z + o.depth && o.z < z + depth && y < o.y + o.height && o.y < y + height &&
           x < o.x + o.width && o.x < x + width;
  }
};

/// Throws unless no two boxes overlap. Together with "inside the image" and "voxel counts add up to the image",
/// this means the boxes tile it exactly. Pairwise for the few chunks images usually have, else a voxel bitmap.
void check_no_overlap(const std::vector<Box>& boxes, const std::array<int64_t, 5>& shape, const Label& where,
                      const char* what) {
  auto fail = [&](size_t a, size_t b) {
    throw ImportError(where + ": " + what + " " + std::to_string(a) + " and " + std::to_string(b) +
                      " overlap (pieces must tile the image exactly)");
  };
  if (boxes.size() <= 64) {
    for (size_t a = 0; a < boxes.size(); ++a) {
      for (size_t b = a + 1; b < boxes.size(); ++b) {
        if (boxes[a].overlaps(boxes[b])) fail(a, b);
      }
    }
    return;
  }
  const int64_t voxels = shape[0] * shape[1] * shape[2] * shape[3] * shape[4];  // checked by the caller
  std::vector<uint64_t> seen(static_cast<size_t>(voxels / 64 + 1), 0);
  std::vector<int32_t> owner;  // filled only to name the pair in the error
  for (size_t k = 0; k < boxes.size(); ++k) {
    const Box& b = boxes[k];
    for (int64_t z = b.z; z < b.z + b.depth; ++z) {
      for (int64_t y = b.y; y < b.y + b.height; ++y) {
        const int64_t row = (((b.t * shape[1] + b.c) * shape[2] + z) * shape[3] + y) * shape[4];
        for (int64_t x = b.x; x < b.x + b.width; ++x) {
          const int64_t v = row + x;
          uint64_t& word = seen[static_cast<size_t>(v >> 6)];
          const uint64_t bit = uint64_t{1} << (v & 63);
          if (word & bit) {
            for (size_t j = 0; j < k; ++j) {
              if (boxes[j].overlaps(b)) fail(j, k);
            }
          }
          word |= bit;
        }
      }
    }
  }
}

}  // namespace

void OmeImporter::check_row(const ArrayView& image, int64_t image_index, int64_t global_row) {
  const Label where(global_row);
  if (image.is_null(image_index)) throw ImportError(where + ": image is null");
  // Indices below follow the C Data Interface: a struct's offset applies to its children (child_row), a
  // list's offsets give indices into its child.
  const int64_t row = image.child_row(image_index);
  const ArrayView& meta = *image.child("pixels_meta");
  if (meta.is_null(row)) throw ImportError(where + ": pixels_meta is null");
  const int64_t meta_row = meta.child_row(row);
  const Label mw(where, "pixels_meta");
  const std::array<int64_t, 5> shape = {
      integer_field(meta, "size_t", meta_row, mw), integer_field(meta, "size_c", meta_row, mw),
      integer_field(meta, "size_z", meta_row, mw), integer_field(meta, "size_y", meta_row, mw),
      integer_field(meta, "size_x", meta_row, mw)};
  static constexpr const char* kSizeNames[] = {"size_t", "size_c", "size_z", "size_y", "size_x"};
  for (size_t k = 0; k < shape.size(); ++k) {
    if (shape[k] <= 0) {
      throw ImportError(mw + " declares a non-positive " + kSizeNames[k] + " (" + std::to_string(shape[k]) + ")");
    }
    if (shape[k] > std::numeric_limits<int32_t>::max()) {
      throw ImportError(mw + "." + kSizeNames[k] + " = " + std::to_string(shape[k]) + " exceeds 2^31 - 1");
    }
  }
  // Optional: how many bits of the declared type the instrument fills (a 12-bit camera in uint16), which a
  // scale by bit depth divides by. Not written by ome-arrow 0.1.0; read where a producer records it.
  if (const ArrayView* bits = meta.child("significant_bits"); bits != nullptr && !bits->is_null(meta_row)) {
    if (!is_integer(bits->type())) {
      throw ImportError(mw + ".significant_bits: expected an integer, found " + type_name(bits->type()));
    }
    const int64_t value = bits->integer(meta_row);
    if (value < 1 || value > 32) {
      throw ImportError(mw + ".significant_bits = " + std::to_string(value) + " is not between 1 and 32");
    }
    summary_.significant_bits.insert(value);
  }
  const int64_t voxels = checked_product(shape, where);
  const int64_t plane_size = shape[3] * shape[4];
  const int64_t plane_count = shape[0] * shape[1] * shape[2];
  if (meta.child("type")->is_null(meta_row)) throw ImportError(mw + ".type is null");
  const std::string declared_name(meta.child("type")->bytes(meta_row));
  summary_.declared_types.insert(declared_name);
  // Sizes against the cap before anything (a scratch buffer, a batch buffer) is allocated for them.
  auto check_bytes = [&](int itemsize, const std::string& dtype) {
    int64_t bytes = 0;
    if (__builtin_mul_overflow(voxels, int64_t{itemsize}, &bytes) || bytes > max_sample_bytes_) {
      throw ImportError(where + ": an image of " + std::to_string(voxels) + " " + dtype + " pixels exceeds " +
                        "max_sample_bytes=" + std::to_string(max_sample_bytes_) +
                        " (pass a larger max_sample_bytes to read it)");
    }
  };
  if (const int itemsize = dtype_size(declared_name); itemsize > 0) check_bytes(itemsize, declared_name);

  PixelIndex& index = index_ != nullptr ? *index_ : scratch_index_;
  ImageLocation location;
  if (!parse_pixel_type(declared_name, &location.declared)) {
    throw ImportError(where + ": pixel type '" + declared_name + "' is not supported (uint8, uint16, int16, int32, float32)");
  }
  if (shape[0] != 1) throw ImportError(where + ": time series (size_t > 1) are not supported by the loader");
  location.first_piece = static_cast<int64_t>(index.pieces.size());
  location.channels = static_cast<int32_t>(shape[1]);
  location.depth = static_cast<int32_t>(shape[2]);
  location.height = static_cast<int32_t>(shape[3]);
  location.width = static_cast<int32_t>(shape[4]);
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
      if (end - begin != plane_count) {
        throw ImportError(where + ": " + std::to_string(end - begin) + " planes, but t*c*z = " +
                          std::to_string(plane_count));
      }
    }
    std::vector<bool> seen(end > begin ? static_cast<size_t>(plane_count) : 0, false);
    for (int64_t p = begin; p < end; ++p) {
      const Label pw(where, "plane", p - begin);
      if (plane.is_null(p)) throw ImportError(pw + " is null");
      const int64_t q = plane.child_row(p);
      if (pixels.is_null(q)) throw ImportError(pw + " has null pixels");
      const int64_t z = integer_field(plane, "z", q, pw), t = integer_field(plane, "t", q, pw),
                    c = integer_field(plane, "c", q, pw);
      if (z < 0 || z >= shape[2] || t < 0 || t >= shape[0] || c < 0 || c >= shape[1]) {
        throw ImportError(where + ": plane (z=" + std::to_string(z) + ", t=" + std::to_string(t) + ", c=" +
                          std::to_string(c) + ") lies outside the declared image");
      }
      const auto slot = static_cast<size_t>((t * shape[1] + c) * shape[2] + z);
      if (seen[slot]) {
        throw ImportError(where + ": plane (z=" + std::to_string(z) + ", t=" + std::to_string(t) + ", c=" +
                          std::to_string(c) + ") appears twice");
      }
      seen[slot] = true;
      const auto [pb, pe] = pixels.list_range(q);
      if (pe - pb != plane_size) {
        throw ImportError(pw + " has " + std::to_string(pe - pb) + " pixels, but size_y*size_x = " +
                          std::to_string(plane_size));
      }
      const ArrayView& values = pixels.child(0);
      if (values.any_null(pb, pe)) throw ImportError(pw + " has null pixel values");
      summary_.stored_types.insert(type_name(values.type()));
      summary_.payload_bytes += plane_size * primitive_size(values.type());
      summary_.planes += 1;
      PixelPiece piece;
      if (!element_type(values.type(), &piece.type)) {
        throw ImportError(where + ": pixels of type " + type_name(values.type()) + " are not supported");
      }
      check_bytes(pixel_size(piece.type), type_name(values.type()));
      piece.data = values.primitive_data() + pb * primitive_size(values.type());
      piece.nbytes = plane_size * primitive_size(values.type());
      piece.c = static_cast<int32_t>(c);
      piece.z = static_cast<int32_t>(z);
      piece.height = static_cast<int32_t>(shape[3]);
      piece.width = static_cast<int32_t>(shape[4]);
      index.pieces.push_back(piece);
      recorded_planes = true;
    }
  }

  if (const ArrayView* chunks = image.child("chunks"); chunks != nullptr && chunks->type() != ArrowType::kNull &&
                                                       !chunks->is_null(row)) {
    const auto [begin, end] = chunks->list_range(row);
    const ArrayView& chunk = chunks->child(0);
    int64_t covered = 0;
    std::vector<Box> boxes;
    if (end > begin) {
      any_pixels = true;
      summary_.has_chunks = true;
    }
    for (int64_t k = begin; k < end; ++k) {
      const Label cw(where, "chunk", k - begin);
      if (chunk.is_null(k)) throw ImportError(cw + " is null");
      const int64_t q = chunk.child_row(k);
      auto get = [&](std::string_view f) { return integer_field(chunk, f, q, cw); };
      const int64_t t = get("t"), c = get("c"), z = get("z"), y = get("y"), x = get("x");
      const int64_t sz = get("shape_z"), sy = get("shape_y"), sx = get("shape_x");
      if (sz <= 0 || sy <= 0 || sx <= 0) throw ImportError(cw + " has a non-positive shape");
      // Written so that nothing overflows: every size is positive, so shape - extent cannot wrap.
      if (t < 0 || t >= shape[0] || c < 0 || c >= shape[1] || z < 0 || y < 0 || x < 0 || sz > shape[2] ||
          sy > shape[3] || sx > shape[4] || z > shape[2] - sz || y > shape[3] - sy || x > shape[4] - sx) {
        throw ImportError(cw + " (z=" + std::to_string(z) + ", y=" + std::to_string(y) + ", x=" + std::to_string(x) +
                          ", shape " + std::to_string(sz) + "x" + std::to_string(sy) + "x" + std::to_string(sx) +
                          ") lies outside the declared image");
      }
      const int64_t count = sz * sy * sx;  // <= voxels: the chunk lies inside the image
      covered += count;
      if (covered > voxels) {
        throw ImportError(where + ": chunks hold more pixels than the declared shape has (" +
                          std::to_string(voxels) + "): they overlap or repeat");
      }
      boxes.push_back({t, c, z, y, x, sz, sy, sx});
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
        const std::string dtype = string_field(chunk, "dtype", q, declared_name);
        const std::string codec = string_field(chunk, "compression", q, "none");
        const int itemsize = dtype_size(dtype);
        if (itemsize == 0) throw ImportError(cw + " has unsupported dtype '" + dtype + "'");
        check_bytes(itemsize, dtype);
        const std::string_view bytes = payload->bytes(q);
        const auto nbytes = static_cast<int64_t>(bytes.size());
        const int64_t raw = count * itemsize;  // <= voxels * itemsize, checked above
        piece.codec = parse_codec(codec, cw);
        if (piece.codec == Codec::kNone && nbytes != raw) {
          throw ImportError(cw + " has " + std::to_string(nbytes) + " bytes, but its shape needs " +
                            std::to_string(raw));
        }
        // Compressed payloads: the frame header must agree with the shape (the rest is checked when decoded).
        check_frame_header(piece.codec, reinterpret_cast<const uint8_t*>(bytes.data()), nbytes, raw,
                           [&] { return cw.str(); });
        summary_.stored_types.insert(dtype);
        summary_.compressions.insert(codec.empty() ? "none" : codec);
        summary_.payload_bytes += nbytes;
        if (!parse_pixel_type(dtype, &piece.type)) throw ImportError(cw + " has unsupported dtype '" + dtype + "'");
        piece.data = reinterpret_cast<const uint8_t*>(bytes.data());
        piece.nbytes = nbytes;
      } else {
        const ArrayView& pixels = *chunk.child("pixels");
        if (pixels.is_null(q)) throw ImportError(cw + " has null pixels");
        const auto [pb, pe] = pixels.list_range(q);
        if (pe - pb != count) {
          throw ImportError(cw + " has " + std::to_string(pe - pb) + " pixels, but its shape needs " +
                            std::to_string(count));
        }
        const ArrayView& values = pixels.child(0);
        if (values.any_null(pb, pe)) throw ImportError(cw + " has null pixel values");
        summary_.stored_types.insert(type_name(values.type()));
        summary_.payload_bytes += count * primitive_size(values.type());
        if (!element_type(values.type(), &piece.type)) {
          throw ImportError(cw + ": pixels of type " + type_name(values.type()) + " are not supported");
        }
        check_bytes(pixel_size(piece.type), type_name(values.type()));
        piece.data = values.primitive_data() + pb * primitive_size(values.type());
        piece.nbytes = count * primitive_size(values.type());
      }
      summary_.chunks += 1;
      if (!recorded_planes) index.pieces.push_back(piece);
    }
    if (end > begin && covered != voxels) {
      throw ImportError(where + ": chunks hold " + std::to_string(covered) + " pixels, but the declared shape has " +
                        std::to_string(voxels) + " (a gap)");
    }
    check_no_overlap(boxes, shape, where, "chunks");
  }
  if (!any_pixels) throw ImportError(where + ": no pixel data (planes and chunks are empty)");
  location.num_pieces = static_cast<int32_t>(static_cast<int64_t>(index.pieces.size()) - location.first_piece);
  const PixelPiece* first = index.pieces.data() + location.first_piece;
  location.stored = first->type;
  location.contiguous = contiguous_run(first, location.num_pieces, location);
  index.images.push_back(location);
}

void consume_stream(StreamOwner& stream, SchemaOwner& schema, const std::function<void(ArrayOwner&&)>& on_batch) {
  if (!stream.valid()) throw ImportError("the Arrow stream is already released");
  auto stream_error = [&](const char* what, int code) {
    const char* message = stream->get_last_error ? stream->get_last_error(stream.get()) : nullptr;
    return ImportError(std::string(what) + " failed (errno " + std::to_string(code) + ")" +
                       (message ? ": " + producer_message(message) : std::string()));
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

ImportSummary import_ome_stream(StreamOwner stream, const std::string& column, int64_t max_sample_bytes) {
  SchemaOwner schema;
  OmeImporter importer(column, nullptr, max_sample_bytes);
  consume_stream(stream, schema, [&](ArrayOwner&& batch) { importer.add_batch(*schema.get(), *batch.get()); });
  if (importer.summary().rows == 0) throw ImportError("the table has no rows");
  return importer.summary();
}

}  // namespace loaderbench
