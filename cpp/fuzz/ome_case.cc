#include "ome_case.h"

#include <lz4frame.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <iterator>
#include <map>
#include <tuple>

namespace loaderbench::fuzz {
namespace {

constexpr const char* kIntFormats[] = {"i", "s", "l", "c", "C", "S", "I", "L"};
constexpr size_t kMaxPayload = 4096;

struct StoredType {
  const char* format;
  const char* name;
  PixelType type;
};
constexpr StoredType kStored[] = {
    {"S", "uint16", PixelType::kUint16}, {"C", "uint8", PixelType::kUint8}, {"f", "float32", PixelType::kFloat32},
    {"s", "int16", PixelType::kInt16},   {"i", "int32", PixelType::kInt32}};

/// The pixel at (c, z, y, x) of global row g: distinct per position, so a misplaced piece reads back wrong.
float pixel_value(int64_t g, int64_t c, int64_t z, int64_t y, int64_t x, PixelType type) {
  switch (type) {
    case PixelType::kUint8: return static_cast<float>((g * 13 + c * 29 + z * 7 + y * 5 + x + 1) % 256);
    case PixelType::kUint16: return static_cast<float>((g * 1009 + c * 257 + z * 31 + y * 7 + x * 3 + 11) % 65536);
    case PixelType::kFloat32: return static_cast<float>((g * 7 + c * 5 + z * 3 + y * 2 + x) % 23) * 0.25f - 2.0f;
    // signed: negative values too; int32 within +-2^23, which a float holds exactly
    case PixelType::kInt16:
      return static_cast<float>((g * 1009 + c * 257 + z * 31 + y * 7 + x * 3 + 11) % 65536 - 32768);
    case PixelType::kInt32:
      return static_cast<float>((g * 104729 + c * 7919 + z * 31 + y * 7 + x * 3 + 11) % (1 << 24) - (1 << 23));
  }
  return 0.0f;
}

/// Appends `value` encoded as Arrow primitive `format`.
void append_value(std::vector<uint8_t>& out, const std::string& format, float value) {
  const size_t at = out.size();
  if (format == "f") {
    out.resize(at + 4);
    std::memcpy(out.data() + at, &value, 4);
  } else if (format == "g") {
    const double d = value;
    out.resize(at + 8);
    std::memcpy(out.data() + at, &d, 8);
  } else {
    const int width = format_width(format);
    const auto v = static_cast<uint64_t>(static_cast<int64_t>(value));
    out.resize(at + static_cast<size_t>(width));
    for (int k = 0; k < width; ++k) out[at + static_cast<size_t>(k)] = static_cast<uint8_t>(v >> (8 * k));
  }
}

std::vector<uint8_t> zstd_frame(const std::vector<uint8_t>& raw) {
  std::vector<uint8_t> out(ZSTD_compressBound(raw.size()));
  const size_t n = ZSTD_compress(out.data(), out.size(), raw.data(), raw.size(), 1);
  out.resize(ZSTD_isError(n) ? 0 : n);
  return out;
}

std::vector<uint8_t> lz4_frame(const std::vector<uint8_t>& raw, bool with_content_size) {
  LZ4F_preferences_t prefs;
  std::memset(&prefs, 0, sizeof(prefs));
  if (with_content_size) prefs.frameInfo.contentSize = raw.size();
  std::vector<uint8_t> out(LZ4F_compressFrameBound(raw.size(), &prefs));
  const size_t n = LZ4F_compressFrame(out.data(), out.size(), raw.data(), raw.size(), &prefs);
  out.resize(LZ4F_isError(n) ? 0 : n);
  return out;
}

template <typename T>
T pick(FuzzInput& in, const char* label, std::initializer_list<T> options) {
  return options.begin()[in.choose(static_cast<uint32_t>(options.size()), label)];
}

}  // namespace

OmeCase build_ome_case(FuzzInput& in) {
  OmeCase oc;
  // Layout: 0 planes; 1 chunks (pixel lists); 2 chunks (bytes); 3 planes + chunks (lists), as ome-arrow writes;
  // 4 planes + chunks (bytes); 5 null-typed planes + chunks; 6 planes + null-typed chunks.
  const uint32_t layout = in.choose(7, "layout");
  const bool has_planes = layout == 0 || layout >= 3;
  const bool has_chunks = layout != 0;
  const bool planes_null = layout == 5;
  const bool chunks_null = layout == 6;
  const bool chunk_bytes = layout == 2 || layout == 4;

  const StoredType& stored = kStored[in.choose(static_cast<uint32_t>(std::size(kStored)), "pixel_type")];
  std::string stored_format = stored.format;
  if (const uint32_t bad = in.rare(3)) {
    stored_format = std::array{"c", "l", "g"}[bad - 1];
    in.perturb_values();
  }
  std::string declared_name = stored.name;
  if (in.choose(2, "declared_alias") == 1) {
    if (stored.type == PixelType::kUint16) declared_name = "uint8";  // ome-arrow widens uint8 images to uint16
    if (stored.type == PixelType::kFloat32) declared_name = "float";
  }
  if (const uint32_t bad = in.rare(4)) {
    declared_name = std::array{"int32", "", "uint16 ", "float64"}[bad - 1];
    in.perturb_values();
  }
  PixelType declared = stored.type;
  parse_pixel_type(declared_name, &declared);

  std::map<std::string, std::string> int_format;
  for (const char* field : {"row_id", "size_x", "size_y", "size_z", "size_c", "size_t", "z", "t", "c", "y", "x",
                            "shape_z", "shape_y", "shape_x"}) {
    int_format[field] = kIntFormats[in.choose(8, "int_format")];
  }
  std::string string_format = in.choose(2, "string_format") ? "U" : "u";
  if (in.rare(1)) {
    string_format = "z";  // binary where a string belongs
    in.perturb_structure();
  }
  std::string binary_format = in.choose(2, "binary_format") ? "Z" : "z";
  if (in.rare(1)) {
    binary_format = "u";
    in.perturb_structure();
  }
  const std::string outer_list = in.choose(2, "list_format") ? "+L" : "+l";
  const uint32_t pixels_list = in.choose(3, "pixels_list");  // +l, +L, fixed-size (planes of one shape only)
  const uint32_t chunking = in.choose(4, "chunking");
  const uint32_t plane_order = in.choose(3, "plane_order");
  const bool reverse_chunks = in.choose(2, "chunk_order") == 1;
  const bool row_id = in.choose(2, "row_id") == 0;
  // Without a dtype field a byte chunk is read as the declared type: only the plain choice when they agree.
  const bool dtype_field = in.choose(2, "dtype_field") == 0 || declared != stored.type;
  const bool compression_field = in.choose(2, "compression_field") == 0;
  // lz4 frames without the optional content size, all with it, or alternating (a table from two writers).
  const uint32_t lz4_content_size = in.choose(3, "lz4_content_size");
  int64_t lz4_frames = 0;
  const bool vary_shape = in.choose(2, "vary_shape") == 1;
  const uint32_t drop = in.rare(5);  // a required field left out
  if (drop) in.perturb_structure();
  std::string image_name = "ome_image";
  if (in.rare(1)) {
    image_name = "OME_image";
    in.perturb_structure();
  }
  if (const uint32_t v = in.rare(3)) {
    oc.plan.fail_at = static_cast<int>(v) - 1;
    in.perturb_structure();
  }
  int64_t size_t_ = 1;
  if (in.rare(1)) {
    size_t_ = 2;  // a time series: valid OME-Arrow that the loader does not take
    in.perturb_values();
  }
  const int64_t size_c = 1 + in.choose(3, "size_c");
  const int64_t size_z = 1 + in.choose(3, "size_z");
  const int64_t base_y = pick<int64_t>(in, "size_y", {4, 1, 2, 3, 5, 8, 16, 7});
  const int64_t base_x = pick<int64_t>(in, "size_x", {5, 1, 2, 3, 4, 8, 16, 9});
  const bool fixed_pixels = pixels_list == 2 && !vary_shape;
  const std::string pixels_format = pixels_list == 1 ? "+L" : "+l";

  const int batches = 1 + static_cast<int>(in.choose(3, "batches"));
  for (int b = 0; b < batches; ++b) {
    const int64_t rows = pick<int64_t>(in, "rows", {2, 1, 3, 0, 4});
    std::map<std::string, std::vector<int64_t>> meta, plane, chunk;
    std::vector<int64_t> row_ids, plane_offsets{0}, chunk_offsets{0}, plane_pixel_offsets{0}, chunk_pixel_offsets{0};
    std::vector<std::string> types, orders, dtypes, compressions, payloads;
    std::vector<uint8_t> plane_pixels, chunk_pixels;
    int64_t planes_total = 0, chunks_total = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t g = oc.rows++;
      const int64_t sy = vary_shape ? pick<int64_t>(in, "row_y", {4, 3, 6, 1}) : base_y;
      const int64_t sx = vary_shape ? pick<int64_t>(in, "row_x", {5, 2, 7, 1}) : base_x;
      ExpectedImage e;
      e.channels = static_cast<int32_t>(size_c);
      e.depth = static_cast<int32_t>(size_z);
      e.height = static_cast<int32_t>(sy);
      e.width = static_cast<int32_t>(sx);
      e.declared = declared;
      e.stored = stored.type;
      for (int64_t c = 0; c < size_c; ++c)
        for (int64_t z = 0; z < size_z; ++z)
          for (int64_t y = 0; y < sy; ++y)
            for (int64_t x = 0; x < sx; ++x) e.pixels.push_back(pixel_value(g, c, z, y, x, stored.type));
      auto at = [&](int64_t c, int64_t z, int64_t y, int64_t x) {
        return e.pixels[static_cast<size_t>(((c * size_z + z) * sy + y) * sx + x)];
      };

      row_ids.push_back(in.integer(g));
      meta["size_x"].push_back(in.integer(sx));
      meta["size_y"].push_back(in.integer(sy));
      meta["size_z"].push_back(in.integer(size_z));
      meta["size_c"].push_back(in.integer(size_c));
      meta["size_t"].push_back(in.integer(size_t_));
      types.push_back(declared_name);
      orders.push_back("XYZCT");

      if (has_planes && !planes_null) {
        std::vector<std::array<int64_t, 3>> tcz;  // (t, c, z) of each plane, in the chosen order
        for (int64_t t = 0; t < size_t_; ++t)
          for (int64_t c = 0; c < size_c; ++c)
            for (int64_t z = 0; z < size_z; ++z) tcz.push_back({t, c, z});
        if (plane_order == 1) std::reverse(tcz.begin(), tcz.end());
        if (plane_order == 2) {
          std::stable_sort(tcz.begin(), tcz.end(), [](auto& a, auto& b) { return std::tie(a[0], a[2]) < std::tie(b[0], b[2]); });
        }
        if (const uint32_t v = in.rare(2)) {  // a plane missing, or one twice
          if (v == 1) tcz.pop_back();
          else tcz.push_back(tcz.front());
          in.perturb_values();
        }
        for (const auto& [t, c, z] : tcz) {
          plane["z"].push_back(in.integer(z));
          plane["t"].push_back(in.integer(t));
          plane["c"].push_back(in.integer(c));
          for (int64_t y = 0; y < sy; ++y)
            for (int64_t x = 0; x < sx; ++x) append_value(plane_pixels, stored_format, at(c, z, y, x));
          plane_pixel_offsets.push_back(plane_pixel_offsets.back() + sy * sx);
        }
        planes_total += static_cast<int64_t>(tcz.size());
      }
      plane_offsets.push_back(planes_total);

      if (has_chunks && !chunks_null) {
        const std::array<int64_t, 3> extent = chunking == 0   ? std::array<int64_t, 3>{1, sy, sx}
                                              : chunking == 1 ? std::array<int64_t, 3>{size_z, sy, sx}
                                              : chunking == 2 ? std::array<int64_t, 3>{1, (sy + 1) / 2, (sx + 1) / 2}
                                                              : std::array<int64_t, 3>{std::min<int64_t>(2, size_z),
                                                                                       std::min<int64_t>(3, sy),
                                                                                       std::min<int64_t>(2, sx)};
        std::vector<std::array<int64_t, 8>> boxes;  // t, c, z, y, x, shape_z, shape_y, shape_x
        for (int64_t t = 0; t < size_t_; ++t)
          for (int64_t c = 0; c < size_c; ++c)
            for (int64_t z = 0; z < size_z; z += extent[0])
              for (int64_t y = 0; y < sy; y += extent[1])
                for (int64_t x = 0; x < sx; x += extent[2]) {
                  boxes.push_back({t, c, z, y, x, std::min(extent[0], size_z - z), std::min(extent[1], sy - y),
                                   std::min(extent[2], sx - x)});
                }
        if (reverse_chunks) std::reverse(boxes.begin(), boxes.end());
        for (const auto& box : boxes) {
          static constexpr const char* kFields[] = {"t", "c", "z", "y", "x", "shape_z", "shape_y", "shape_x"};
          for (size_t f = 0; f < 8; ++f) chunk[kFields[f]].push_back(in.integer(box[f]));
          std::vector<uint8_t> raw;
          const std::string& format = chunk_bytes ? std::string(stored.format) : stored_format;
          for (int64_t z = box[2]; z < box[2] + box[5]; ++z)
            for (int64_t y = box[3]; y < box[3] + box[6]; ++y)
              for (int64_t x = box[4]; x < box[4] + box[7]; ++x) append_value(raw, format, at(box[1], z, y, x));
          if (!chunk_bytes) {
            chunk_pixels.insert(chunk_pixels.end(), raw.begin(), raw.end());
            chunk_pixel_offsets.push_back(chunk_pixel_offsets.back() + box[5] * box[6] * box[7]);
            continue;
          }
          const uint32_t codec = compression_field ? in.choose(3, "codec") : 0;
          const bool sized = lz4_content_size == 1 || (lz4_content_size == 2 && codec == 2 && lz4_frames++ % 2 == 1);
          std::vector<uint8_t> payload = codec == 1 ? zstd_frame(raw) : codec == 2 ? lz4_frame(raw, sized) : raw;
          if (in.choose(2, "payload") == 1) payload = in.blob(payload, kMaxPayload);
          payloads.emplace_back(payload.begin(), payload.end());
          std::string compression = codec == 1 ? "zstd" : codec == 2 ? "lz4" : in.choose(2, "none_name") ? "" : "none";
          if (const uint32_t bad = in.rare(3)) {
            compression = std::array{"gzip", "ZSTD", "snappy"}[bad - 1];
            in.perturb_values();
          }
          compressions.push_back(compression);
          std::string dtype = stored.name;
          if (const uint32_t bad = in.rare(3)) {
            dtype = std::array{"int64", "uint32", "uint8"}[bad - 1];
            if (dtype != stored.name) in.perturb_values();
          }
          dtypes.push_back(dtype);
        }
        chunks_total += static_cast<int64_t>(boxes.size());
      }
      chunk_offsets.push_back(chunks_total);
      oc.images.push_back(std::move(e));
    }

    auto ints = [&](const char* name, const std::vector<int64_t>& values) {
      return integers(int_format[name], name, values);
    };
    std::vector<Column> meta_fields;
    for (const char* f : {"size_x", "size_y", "size_z", "size_c", "size_t"}) {
      if (!(drop == 1 && std::strcmp(f, "size_c") == 0)) meta_fields.push_back(ints(f, meta[f]));
    }
    if (drop != 4) meta_fields.push_back(strings(string_format, "type", types));
    meta_fields.push_back(strings(string_format, "dimension_order", orders));

    std::vector<Column> image_fields;
    if (drop != 5) image_fields.push_back(structure("pixels_meta", std::move(meta_fields)));
    if (has_planes) {
      if (planes_null) {
        image_fields.push_back(null_column("planes", rows));
      } else {
        std::vector<Column> fields{ints("z", plane["z"]), ints("t", plane["t"]), ints("c", plane["c"])};
        Column values = raw_values(stored_format, "item", plane_pixels);
        if (drop != 2) {
          fields.push_back(fixed_pixels ? fixed_list("pixels", std::move(values), base_y * base_x)
                                        : list(pixels_format, "pixels", std::move(values), plane_pixel_offsets));
        }
        image_fields.push_back(list(outer_list, "planes", structure("item", std::move(fields)), plane_offsets));
      }
    }
    if (has_chunks) {
      if (chunks_null) {
        image_fields.push_back(null_column("chunks", rows));
      } else {
        std::vector<Column> fields;
        for (const char* f : {"t", "c", "z", "y", "x", "shape_z", "shape_y", "shape_x"}) {
          if (!(drop == 3 && std::strcmp(f, "shape_y") == 0)) fields.push_back(ints(f, chunk[f]));
        }
        if (chunk_bytes) {
          fields.push_back(strings(binary_format, "pixel_bytes", payloads));
          if (dtype_field) fields.push_back(strings(string_format, "dtype", dtypes));
          if (compression_field) fields.push_back(strings(string_format, "compression", compressions));
        } else {
          fields.push_back(list(pixels_format, "pixels", raw_values(stored_format, "item", chunk_pixels),
                                chunk_pixel_offsets));
        }
        image_fields.push_back(list(outer_list, "chunks", structure("item", std::move(fields)), chunk_offsets));
      }
    }
    std::vector<Column> table_fields;
    if (row_id) table_fields.push_back(ints("row_id", row_ids));
    table_fields.push_back(structure(image_name, std::move(image_fields)));
    const Column table = structure("", std::move(table_fields));

    std::vector<DictionaryPlacement> dictionaries;
    oc.plan.batches.push_back(materialize(table, in, &dictionaries));
    oc.plan.dictionaries.push_back(std::move(dictionaries));
  }
  return oc;
}

}  // namespace loaderbench::fuzz
