// OME-Zarr image groups (one per image): the group's multiscales metadata names level 0 (or the level asked for), whose Zarr v3
// (zarr.json) or v2 (.zarray) array is read chunk by chunk — regular chunk grid, C order, the bytes codec (either
// endianness) and at most one of zstd, gzip/zlib, blosc. Axes (t,) (c,) (z,) y, x: t must be 1, z > 1 is a volume.
// What is not supported (sharding, transpose/F order, filters, other codecs or dtypes) is refused by name, never
// decoded wrongly. A missing chunk file reads as the array's fill_value, as the Zarr spec says (zarr skips writing
// chunks that hold only it); a v2 array whose fill_value is null defines none, so a missing chunk there is an error.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "loaderbench/arrow_view.h"
#include "loaderbench/decompress.h"
#include "loaderbench/file_images.h"

#ifdef LOADERBENCH_WITH_ZARR
#include <nlohmann/json.hpp>
#endif

namespace loaderbench {

#ifdef LOADERBENCH_WITH_ZARR
namespace {

using nlohmann::json;

enum class ReadResult { kOk, kMissing };

/// Reads the whole file at `path` into `out`; kMissing when it does not exist, FileImageError otherwise.
ReadResult read_file(const std::string& path, std::vector<uint8_t>& out, int64_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);  // a FIFO: refused below, not waited on
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return ReadResult::kMissing;
    throw FileImageError(path + ": cannot read: " + std::strerror(errno));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw FileImageError(path + ": cannot read: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw FileImageError(path + ": not a regular file");
  if (st.st_size > max_bytes) {
    throw FileImageError(path + ": " + std::to_string(st.st_size) + " bytes, more than one image may hold (" +
                         std::to_string(max_bytes) + ")");
  }
  out.resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t got = ::read(fd, out.data() + done, out.size() - done);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw FileImageError(path + ": cannot read: " + std::strerror(errno));
    if (got == 0) throw FileImageError(path + ": the file shrank while being read");
    done += static_cast<size_t>(got);
  }
  return ReadResult::kOk;
}

constexpr int64_t kMaxMetadataBytes = 16 << 20;

/// The first of `names` that exists under `dir`, its bytes read into `bytes`; "" when none does.
std::string read_first(const std::string& dir, std::initializer_list<const char*> names, std::vector<uint8_t>* bytes) {
  for (const char* name : names) {
    if (read_file(dir + "/" + name, *bytes, kMaxMetadataBytes) == ReadResult::kOk) return name;
  }
  return "";
}

/// The JSON document in `bytes`, read from `path`.
json parse_json(const std::vector<uint8_t>& bytes, const std::string& path) {
  try {
    return json::parse(bytes.begin(), bytes.end());
  } catch (const json::exception& error) {
    throw FileImageError(path + ": not valid JSON (" + error.what() + ")");
  }
}

/// Level 0 of one image: what its metadata says about the array and its chunks.
struct ZarrArray {
  std::string dir;         // item/<level 0 path>
  std::string array_path;  // <level 0 path>, for messages
  std::vector<int64_t> shape, chunks;
  PixelType type = PixelType::kUint8;
  bool big_endian = false;
  Codec codec = Codec::kNone;
  std::string key_prefix;  // "c/" for v3's default chunk keys
  char separator = '/';
  std::vector<uint8_t> fill;  // one element of fill_value in the chunks' byte order; empty: none defined (v2 null)
  ImageFileShape image;       // (C, Z, H, W) after dropping t and a singleton z axis
};

[[noreturn]] void unsupported(const std::string& where, const std::string& what) {
  throw FileImageError(where + ": " + what + " is not supported by the native Zarr reader");
}

bool parse_v3_type(const std::string& name, PixelType* type) {
  return name != "float" && parse_pixel_type(name, type);  // v3 names the types as we do
}

/// One element of `type` holding `value` (the metadata's fill_value), in the chunks' byte order. Integers must fit
/// the type; floats also take "NaN", "Infinity", "-Infinity" and the IEEE bits in hex ("0x7fc00000", v3).
std::vector<uint8_t> parse_fill_value(const json& value, PixelType type, bool big_endian, const std::string& where) {
  std::vector<uint8_t> bytes(static_cast<size_t>(pixel_size(type)));
  const bool ok = with_pixel_type(type, [&]<typename T>(T) {
    T v{};
    if constexpr (std::is_floating_point_v<T>) {
      if (value.is_number()) {
        v = static_cast<T>(value.get<double>());
      } else if (value.is_string()) {
        const std::string text = value.get<std::string>();
        uint32_t bits = 0;
        if (text == "NaN") v = std::numeric_limits<T>::quiet_NaN();
        else if (text == "Infinity") v = std::numeric_limits<T>::infinity();
        else if (text == "-Infinity") v = -std::numeric_limits<T>::infinity();
        else if (text.size() == 2 + 2 * sizeof(T) && text.starts_with("0x") &&
                 std::from_chars(text.data() + 2, text.data() + text.size(), bits, 16).ptr == text.data() + text.size())
          v = std::bit_cast<T>(bits);
        else return false;
      } else {
        return false;
      }
    } else if (value.is_number_unsigned()) {
      if (!std::in_range<T>(value.get<uint64_t>())) return false;
      v = static_cast<T>(value.get<uint64_t>());
    } else if (value.is_number_integer()) {
      if (!std::in_range<T>(value.get<int64_t>())) return false;
      v = static_cast<T>(value.get<int64_t>());
    } else if (value.is_number_float()) {  // 3.0 written for an integer type
      const double d = value.get<double>();
      if (d != std::trunc(d) || d < static_cast<double>(std::numeric_limits<T>::min()) ||
          d > static_cast<double>(std::numeric_limits<T>::max()))
        return false;
      v = static_cast<T>(d);
    } else {
      return false;
    }
    std::memcpy(bytes.data(), &v, sizeof v);
    return true;
  });
  if (!ok) {
    throw FileImageError(where + ": fill_value " + value.dump() + " is not a valid " + pixel_type_name(type) +
                         " value");
  }
  if (big_endian) std::reverse(bytes.begin(), bytes.end());
  return bytes;
}

Codec bytes_codec(const std::string& name, const std::string& where) {
  if (name == "zstd") return Codec::kZstd;
  if (name == "gzip" || name == "zlib") return Codec::kGzip;
  if (name == "blosc") return Codec::kBlosc;
  unsupported(where, "the codec '" + name + "'");
}

void parse_v3_array(const json& meta, const std::string& where, ZarrArray* array) {
  if (meta.value("node_type", "") != "array") throw FileImageError(where + ": not a Zarr array");
  const std::string type = meta.at("data_type").get<std::string>();
  if (!parse_v3_type(type, &array->type)) unsupported(where, "the data type '" + type + "'");
  array->shape = meta.at("shape").get<std::vector<int64_t>>();
  const json& grid = meta.at("chunk_grid");
  if (grid.at("name").get<std::string>() != "regular") {
    unsupported(where, "the chunk grid '" + grid.at("name").get<std::string>() + "'");
  }
  array->chunks = grid.at("configuration").at("chunk_shape").get<std::vector<int64_t>>();
  const json encoding = meta.value("chunk_key_encoding", json{{"name", "default"}});
  const std::string encoding_name = encoding.at("name").get<std::string>();
  const json config = encoding.value("configuration", json::object());
  if (encoding_name == "default") {
    array->separator = config.value("separator", std::string("/")).at(0);
    array->key_prefix = std::string("c") + array->separator;
  } else if (encoding_name == "v2") {
    array->separator = config.value("separator", std::string(".")).at(0);
  } else {
    unsupported(where, "the chunk key encoding '" + encoding_name + "'");
  }
  if (!meta.value("storage_transformers", json::array()).empty()) unsupported(where, "a storage transformer");
  bool seen_bytes = false;
  for (const json& codec : meta.at("codecs")) {
    const std::string name = codec.at("name").get<std::string>();
    const json conf = codec.value("configuration", json::object());
    if (name == "bytes") {
      array->big_endian = conf.value("endian", std::string("little")) == "big";
      seen_bytes = true;
    } else if (name == "sharding_indexed") {
      unsupported(where, "sharding (the codec 'sharding_indexed')");
    } else if (name == "transpose") {
      unsupported(where, "the codec 'transpose' (non-C order)");
    } else if (!seen_bytes) {
      unsupported(where, "the array-to-array codec '" + name + "'");
    } else {
      if (array->codec != Codec::kNone) unsupported(where, "a chain of several compression codecs");
      array->codec = bytes_codec(name, where);
    }
  }
  if (!seen_bytes) throw FileImageError(where + ": no 'bytes' codec in the codec chain");
  array->fill = parse_fill_value(meta.at("fill_value"), array->type, array->big_endian, where);  // required in v3
}

void parse_v2_array(const json& meta, const std::string& where, ZarrArray* array) {
  if (meta.value("zarr_format", 0) != 2) throw FileImageError(where + ": not a Zarr v2 array");
  const std::string order = meta.value("order", std::string("C"));
  if (order != "C") unsupported(where, "order '" + order + "'");
  const std::string dtype = meta.at("dtype").get<std::string>();
  if (dtype.size() != 3 || (dtype[0] != '<' && dtype[0] != '>' && dtype[0] != '|')) {
    unsupported(where, "the dtype '" + dtype + "'");
  }
  const std::string kind = dtype.substr(1);
  if (kind == "u1") array->type = PixelType::kUint8;
  else if (kind == "u2") array->type = PixelType::kUint16;
  else if (kind == "i2") array->type = PixelType::kInt16;
  else if (kind == "i4") array->type = PixelType::kInt32;
  else if (kind == "f4") array->type = PixelType::kFloat32;
  else unsupported(where, "the dtype '" + dtype + "'");
  array->big_endian = dtype[0] == '>';
  array->shape = meta.at("shape").get<std::vector<int64_t>>();
  array->chunks = meta.at("chunks").get<std::vector<int64_t>>();
  const json filters = meta.value("filters", json());
  if (!filters.is_null() && !filters.empty()) unsupported(where, "filters");
  const json compressor = meta.value("compressor", json());
  if (!compressor.is_null()) array->codec = bytes_codec(compressor.at("id").get<std::string>(), where);
  array->separator = meta.value("dimension_separator", std::string(".")).at(0);
  const json fill = meta.value("fill_value", json());
  if (!fill.is_null()) array->fill = parse_fill_value(fill, array->type, array->big_endian, where);
}

/// The two metadata files of an image's level: the group's (zarr.json or .zattrs) and the level array's (zarr.json or
/// .zarray, in the level's directory), by name ("" when not read yet) and bytes.
struct LevelFiles {
  std::string group_name, array_name;
  std::vector<uint8_t> group, array;
};

/// Reads the group metadata of the image at `item` into `files` (group_name "" when it has none).
void read_group_file(const std::string& item, LevelFiles* files) {
  files->group_name = read_first(item, {"zarr.json", ".zattrs"}, &files->group);
}

/// Reads the metadata of the level array at `item`/`array_path` into `files` (array_name "" when it has none).
void read_array_file(const std::string& item, const std::string& array_path, LevelFiles* files) {
  files->array_name = read_first(item + "/" + array_path, {"zarr.json", ".zarray"}, &files->array);
}

/// Finds multiscale level `level` (0: full resolution) of the image group at `item` and parses its array metadata,
/// from the group file already in `files` and the array file, read into `files` unless it holds it already.
ZarrArray parse_level(const std::string& item, int64_t max_chunk_bytes, int32_t level, LevelFiles* files) {
  ZarrArray array;
  try {
    json attrs;
    if (files->group_name.empty()) throw FileImageError(item + ": not a Zarr group (no zarr.json or .zattrs)");
    json group = parse_json(files->group, item + "/" + files->group_name);
    if (files->group_name == "zarr.json") {
      if (group.value("node_type", "") != "group") throw FileImageError(item + ": not a Zarr group");
      attrs = group.value("attributes", json::object());
    } else {
      attrs = std::move(group);
    }
    const json* scales = nullptr;
    if (attrs.contains("ome") && attrs["ome"].contains("multiscales")) scales = &attrs["ome"]["multiscales"];
    else if (attrs.contains("multiscales")) scales = &attrs["multiscales"];
    if (scales == nullptr || !scales->is_array() || scales->empty() || !(*scales)[0].contains("datasets") ||
        (*scales)[0]["datasets"].empty()) {
      throw FileImageError(item + ": not an OME-Zarr image (no multiscales datasets in its attributes)");
    }
    const json& scale = (*scales)[0];
    const auto levels = static_cast<int32_t>(scale["datasets"].size());
    if (level < 0 || level >= levels) {
      throw FileImageError(item + ": multiscale level " + std::to_string(level) + " does not exist (the image has " +
                           std::to_string(levels) + " level(s), 0 to " + std::to_string(levels - 1) + ")");
    }
    array.array_path = scale["datasets"][static_cast<size_t>(level)].at("path").get<std::string>();
    array.dir = item + "/" + array.array_path;
    if (files->array_name.empty()) read_array_file(item, array.array_path, files);
    if (files->array_name == "zarr.json") {
      parse_v3_array(parse_json(files->array, array.dir + "/zarr.json"), array.dir, &array);
    } else if (files->array_name == ".zarray") {
      parse_v2_array(parse_json(files->array, array.dir + "/.zarray"), array.dir, &array);
    } else {
      throw FileImageError(item + ": level " + std::to_string(level) + " array '" + array.array_path +
                           "' is missing (no zarr.json or .zarray)");
    }
    std::vector<std::string> axes;
    if (scale.contains("axes")) {
      for (const json& axis : scale["axes"]) {
        std::string name = axis.is_object() ? axis.at("name").get<std::string>() : axis.get<std::string>();
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return std::tolower(ch); });
        axes.push_back(name);
      }
    } else {
      axes = {"c", "y", "x"};
    }
    const size_t ndim = array.shape.size();
    if (axes.size() != ndim || array.chunks.size() != ndim) {
      throw FileImageError(item + ": " + std::to_string(axes.size()) + " axes in metadata but the array has " +
                           std::to_string(ndim) + " dimensions (and " + std::to_string(array.chunks.size()) +
                           " chunk dimensions)");
    }
    int64_t chunk_elems = 1;
    for (size_t d = 0; d < ndim; ++d) {
      if (array.shape[d] <= 0 || array.chunks[d] <= 0 || array.shape[d] > INT32_MAX) {
        throw FileImageError(item + ": invalid array or chunk shape");
      }
      chunk_elems *= array.chunks[d];
      if (chunk_elems * pixel_size(array.type) > max_chunk_bytes) {
        throw FileImageError(item + ": one chunk would be larger than max_sample_bytes (" +
                             std::to_string(max_chunk_bytes) + ")");
      }
    }
    // t (of size 1) and a singleton z are dropped, a missing c axis means one channel; what remains must be
    // (c,) (z,) y, x, so that the C-order chunks are (C, Z, H, W).
    std::vector<std::string> kept;
    std::vector<int64_t> kept_shape;
    for (size_t d = 0; d < ndim; ++d) {
      if (axes[d] == "t" && array.shape[d] != 1) {
        throw FileImageError(item + ": axis 't' has size " + std::to_string(array.shape[d]) +
                             "; time series are not supported (t must be 1)");
      }
      if (axes[d] == "t" || (axes[d] == "z" && array.shape[d] == 1)) continue;
      kept.push_back(axes[d]);
      kept_shape.push_back(array.shape[d]);
    }
    if (kept.empty() || kept.front() != "c") {
      kept.insert(kept.begin(), "c");
      kept_shape.insert(kept_shape.begin(), 1);
    }
    if (kept.size() == 3) {
      kept.insert(kept.begin() + 1, "z");
      kept_shape.insert(kept_shape.begin() + 1, 1);
    }
    if (kept != std::vector<std::string>{"c", "z", "y", "x"}) {
      std::string names;
      for (const std::string& a : axes) names += (names.empty() ? "" : ", ") + a;
      throw FileImageError(item + ": unsupported axes [" + names + "] (expected (t,) (c,) (z,) y, x)");
    }
    array.image = {array.type, static_cast<int32_t>(kept_shape[0]), static_cast<int32_t>(kept_shape[1]),
                   static_cast<int32_t>(kept_shape[2]), static_cast<int32_t>(kept_shape[3])};
  } catch (const json::exception& error) {
    throw FileImageError(item + ": invalid Zarr metadata (" + error.what() + ")");
  }
  return array;
}

/// parse_level, remembering per thread the last image's metadata files and what they gave: the images of a dataset
/// usually carry byte-identical metadata, and parsing its JSON cost more than reading a 100x100 chunk. Every image's
/// files are read once, in the order parse_level looks for them; only bytes identical to the last image's skip the
/// parse.
ZarrArray open_level(const std::string& item, int64_t max_chunk_bytes, int32_t level) {
  struct Memo {
    bool valid = false;
    int32_t level = 0;
    int64_t max_chunk_bytes = 0;
    LevelFiles files;
    ZarrArray array;
  };
  thread_local Memo memo;
  LevelFiles files;
  read_group_file(item, &files);
  // Identical group metadata names the same level path, so the array file is read where the last image's was.
  if (memo.valid && memo.level == level && memo.max_chunk_bytes == max_chunk_bytes &&
      files.group_name == memo.files.group_name && files.group == memo.files.group) {
    read_array_file(item, memo.array.array_path, &files);
    if (!files.array_name.empty() && files.array_name == memo.files.array_name && files.array == memo.files.array) {
      ZarrArray array = memo.array;
      array.dir = item + "/" + array.array_path;
      return array;
    }
  }
  memo.valid = false;
  ZarrArray array = parse_level(item, max_chunk_bytes, level, &files);
  memo = {true, level, max_chunk_bytes, std::move(files), array};
  return array;
}

std::string chunk_key(const ZarrArray& array, const std::vector<int64_t>& index) {
  std::string key = array.key_prefix;
  for (size_t d = 0; d < index.size(); ++d) {
    if (d > 0) key += array.separator;
    key += std::to_string(index[d]);
  }
  if (index.empty()) key += "0";
  return key;
}

/// Fills `bytes` bytes at `dst` with the array's fill value.
void fill_chunk(const ZarrArray& array, uint8_t* dst, int64_t bytes) {
  with_pixel_type(array.type, [&]<typename T>(T) {
    T value;
    std::memcpy(&value, array.fill.data(), sizeof value);
    std::fill_n(reinterpret_cast<T*>(dst), bytes / static_cast<int64_t>(sizeof value), value);
  });
}

/// Decodes one chunk file into `dst` (exactly `bytes` bytes); a missing one is the fill value.
void decode_chunk(const ZarrArray& array, const std::string& key, std::vector<uint8_t>& file, uint8_t* dst,
                  int64_t bytes) {
  const std::string path = array.dir + "/" + key;
  if (read_file(path, file, std::max<int64_t>(bytes * 2 + 4096, 1 << 20)) == ReadResult::kMissing) {
    if (array.fill.empty()) {
      throw FileImageError(path + ": chunk file " + array.array_path + "/" + key +
                           " is missing and the array defines no fill value (fill_value null): the image's pixels "
                           "are lost");
    }
    fill_chunk(array, dst, bytes);
    return;
  }
  if (array.codec == Codec::kNone) {
    if (static_cast<int64_t>(file.size()) != bytes) {
      throw FileImageError(path + ": uncompressed chunk of " + std::to_string(file.size()) + " bytes, expected " +
                           std::to_string(bytes) + " (truncated?)");
    }
    std::memcpy(dst, file.data(), static_cast<size_t>(bytes));
    return;
  }
  if (!codec_available(array.codec)) unsupported(path, "this chunk codec (not in this build)");
  try {
    decompress(array.codec, file.data(), static_cast<int64_t>(file.size()), dst, bytes);
  } catch (const ImportError& error) {
    throw FileImageError(path + ": " + error.what());
  }
}

void swap_bytes(uint8_t* data, int64_t bytes, int elem) {
  for (int64_t i = 0; i + elem <= bytes; i += elem) std::reverse(data + i, data + i + elem);
}

}  // namespace

ImageFileShape probe_ome_zarr(const std::string& path, int64_t max_chunk_bytes, int32_t level) {
  return open_level(path, max_chunk_bytes, level).image;
}

ImageFileShape read_ome_zarr(const std::string& path, const ImageFileShape& expected, std::vector<uint8_t>& pixels,
                             int64_t max_chunk_bytes, int32_t level) {
  const ZarrArray array = open_level(path, max_chunk_bytes, level);
  check_image_shape(path, array.image, expected);
  pixels.resize(static_cast<size_t>(array.image.bytes()));
  const int elem = pixel_size(array.type);
  const size_t ndim = array.shape.size();
  thread_local std::vector<uint8_t> file;
  if (array.chunks == array.shape) {  // one chunk per image (what our writer stores): decoded in place
    decode_chunk(array, chunk_key(array, std::vector<int64_t>(ndim, 0)), file, pixels.data(), array.image.bytes());
  } else {
    thread_local std::vector<uint8_t> chunk;
    int64_t chunk_elems = 1;
    std::vector<int64_t> grid(ndim), array_stride(ndim, 1), chunk_stride(ndim, 1);
    for (size_t d = 0; d < ndim; ++d) {
      chunk_elems *= array.chunks[d];
      grid[d] = (array.shape[d] + array.chunks[d] - 1) / array.chunks[d];
    }
    for (size_t d = ndim; d-- > 1;) {
      array_stride[d - 1] = array_stride[d] * array.shape[d];
      chunk_stride[d - 1] = chunk_stride[d] * array.chunks[d];
    }
    chunk.resize(static_cast<size_t>(chunk_elems * elem));
    std::vector<int64_t> index(ndim, 0);
    for (bool more = true; more;) {
      decode_chunk(array, chunk_key(array, index), file, chunk.data(), chunk_elems * elem);
      // Copy the part of the chunk inside the array, one run along the last axis at a time.
      std::vector<int64_t> extent(ndim), at(ndim, 0);
      for (size_t d = 0; d < ndim; ++d) {
        extent[d] = std::min(array.chunks[d], array.shape[d] - index[d] * array.chunks[d]);
      }
      const size_t last = ndim - 1;
      for (bool rows = true; rows;) {
        int64_t src = 0, dst = 0;
        for (size_t d = 0; d < ndim; ++d) {
          src += at[d] * chunk_stride[d];
          dst += (index[d] * array.chunks[d] + at[d]) * array_stride[d];
        }
        std::memcpy(pixels.data() + dst * elem, chunk.data() + src * elem, static_cast<size_t>(extent[last] * elem));
        rows = false;
        for (size_t d = last; d-- > 0;) {
          if (++at[d] < extent[d]) {
            rows = true;
            break;
          }
          at[d] = 0;
        }
      }
      more = false;
      for (size_t d = ndim; d-- > 0;) {
        if (++index[d] < grid[d]) {
          more = true;
          break;
        }
        index[d] = 0;
      }
    }
  }
  if (array.big_endian && elem > 1) swap_bytes(pixels.data(), array.image.bytes(), elem);
  return array.image;
}

#else

ImageFileShape probe_ome_zarr(const std::string& path, int64_t, int32_t) {
  throw FileImageError(path + ": OME-Zarr is not supported by this build of the core (LOADERBENCH_WITH_ZARR=OFF)");
}
ImageFileShape read_ome_zarr(const std::string& path, const ImageFileShape&, std::vector<uint8_t>&,
                             int64_t max_chunk_bytes, int32_t level) {
  return probe_ome_zarr(path, max_chunk_bytes, level);
}

#endif

}  // namespace loaderbench
