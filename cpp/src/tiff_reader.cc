// TIFF images with libtiff: strips or tiles, any compression libtiff was built with (none, deflate, LZW, zstd...),
// 8/16-bit unsigned, 16/32-bit signed or 32-bit float samples. What the pages are comes from the file's own
// metadata: the first page's OME-XML (Pixels SizeC/SizeZ/DimensionOrder) or ImageJ description (channels=,
// slices=) make them channel and Z planes in the order it gives; without either, pages are channels (tifffile's
// planar minisblack layout) or one page's samples are (planar or interleaved). Each file is opened, read and
// closed by the calling thread.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "loaderbench/file_images.h"

#ifdef LOADERBENCH_WITH_TIFF
#include <tiffio.h>
#endif

namespace loaderbench {

#ifdef LOADERBENCH_WITH_TIFF
namespace {

/// Files at least this large are memory-mapped by libtiff; smaller ones are read whole first (see TiffFile).
constexpr off_t kMapFilesFrom = 256 << 10;

/// libtiff's messages for one open file, kept instead of printed on stderr (libtiff >= 4.5 per-handle handlers).
struct TiffMessages {
  std::string first_error;
};

int collect_error(TIFF*, void* user_data, const char* module, const char* fmt, va_list ap) {
  auto* messages = static_cast<TiffMessages*>(user_data);
  if (messages != nullptr && messages->first_error.empty()) {
    char text[512];
    std::vsnprintf(text, sizeof text, fmt, ap);
    messages->first_error = module != nullptr && *module ? std::string(module) + ": " + text : std::string(text);
  }
  return 1;  // handled: libtiff's global handler (stderr) is not called
}

int ignore_warning(TIFF*, void*, const char*, const char*, va_list) { return 1; }

/// A whole small file in memory, served to libtiff through its client procedures (read, seek, size, and a "map"
/// that hands the bytes over, so strips are decoded from them without a copy).
struct FileBytes {
  std::unique_ptr<uint8_t[]> data;
  uint64_t size = 0;
  uint64_t position = 0;
};

tmsize_t bytes_read(thandle_t handle, void* dst, tmsize_t want) {
  auto* file = static_cast<FileBytes*>(handle);
  if (want <= 0 || file->position >= file->size) return 0;
  const uint64_t n = std::min<uint64_t>(static_cast<uint64_t>(want), file->size - file->position);
  std::memcpy(dst, file->data.get() + file->position, n);
  file->position += n;
  return static_cast<tmsize_t>(n);
}

tmsize_t bytes_write(thandle_t, void*, tmsize_t) { return 0; }  // opened read-only

toff_t bytes_seek(thandle_t handle, toff_t offset, int whence) {
  auto* file = static_cast<FileBytes*>(handle);
  const uint64_t base = whence == SEEK_CUR ? file->position : whence == SEEK_END ? file->size : 0;
  uint64_t target = 0;
  if ((whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END) || __builtin_add_overflow(base, offset, &target)) {
    return static_cast<toff_t>(-1);
  }
  file->position = target;  // past the end is allowed; reads there return nothing
  return target;
}

int bytes_close(thandle_t) { return 0; }
toff_t bytes_size(thandle_t handle) { return static_cast<FileBytes*>(handle)->size; }

int bytes_map(thandle_t handle, void** base, toff_t* size) {
  auto* file = static_cast<FileBytes*>(handle);
  *base = file->data.get();
  *size = file->size;
  return 1;
}

void bytes_unmap(thandle_t, void*, toff_t) {}

/// Reads the whole of an open file (or as much as it has, should it shrink meanwhile) with read(2).
FileBytes read_whole(int fd, uint64_t size, const std::string& path) {
  FileBytes bytes;
  bytes.data.reset(new uint8_t[std::max<uint64_t>(size, 1)]);
  while (bytes.size < size) {
    const ssize_t got = ::read(fd, bytes.data.get() + bytes.size, size - bytes.size);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw FileImageError(path + ": cannot read: " + std::strerror(errno));
    if (got == 0) break;
    bytes.size += static_cast<uint64_t>(got);
  }
  return bytes;
}

/// An open TIFF, closed with its owner; failures become FileImageError naming the file and libtiff's reason.
class TiffFile {
 public:
  explicit TiffFile(const std::string& path) : path_(path) {
    struct OptionsOwner {
      TIFFOpenOptions* options = TIFFOpenOptionsAlloc();
      ~OptionsOwner() { TIFFOpenOptionsFree(options); }
    } opts;
    if (opts.options == nullptr) throw FileImageError(path + ": out of memory opening the TIFF");
    TIFFOpenOptionsSetErrorHandlerExtR(opts.options, collect_error, &messages_);
    TIFFOpenOptionsSetWarningHandlerExtR(opts.options, ignore_warning, nullptr);
    // Small files are read whole with one read(2) and parsed from memory: libtiff's own file I/O issues a seek and a
    // read per structure it parses, and for a 100x100 image those system calls cost more than the decode (a map per
    // file costs more still: TLB shootdowns across the worker threads). Large ones keep libtiff's map (reading them
    // whole measured no faster at 1000x1000; libtiff's unmapped reads were ~30 % slower). O_NONBLOCK: a FIFO
    // among the files is refused below instead of blocking the open.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) throw FileImageError(path + ": cannot read: " + std::strerror(errno));
    struct stat st {};
    const int err = ::fstat(fd, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : S_ISREG(st.st_mode) ? 0 : EINVAL;
    if (err != 0) {
      ::close(fd);
      throw FileImageError(path + ": cannot read: " + std::strerror(err));
    }
    if (st.st_size < kMapFilesFrom) {
      try {
        bytes_ = read_whole(fd, static_cast<uint64_t>(st.st_size), path);
      } catch (...) {
        ::close(fd);
        throw;
      }
      ::close(fd);
      tif_ = TIFFClientOpenExt(path.c_str(), "rM", &bytes_, bytes_read, bytes_write, bytes_seek, bytes_close,
                               bytes_size, bytes_map, bytes_unmap, opts.options);
    } else {
      ::close(fd);
      errno = 0;
      tif_ = TIFFOpenExt(path.c_str(), "r", opts.options);
      if (tif_ == nullptr && (errno == ENOENT || errno == EACCES)) {
        throw FileImageError(path + ": cannot read: " + std::strerror(errno));
      }
    }
    if (tif_ == nullptr) fail("cannot open this TIFF (truncated or corrupt?)");
  }
  ~TiffFile() {
    if (tif_ != nullptr) TIFFClose(tif_);
  }
  TiffFile(const TiffFile&) = delete;
  TiffFile& operator=(const TiffFile&) = delete;

  TIFF* get() const { return tif_; }
  [[noreturn]] void fail(const std::string& what) const {
    throw FileImageError(path_ + ": " + what + (messages_.first_error.empty() ? "" : " (" + messages_.first_error + ")"));
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  TiffMessages messages_;
  FileBytes bytes_;  // a small file's contents; libtiff reads them until it is closed (declared before tif_)
  TIFF* tif_ = nullptr;
};

/// What one page (IFD) holds.
struct PageInfo {
  uint32_t width = 0, height = 0;
  uint16_t samples = 1, planar = PLANARCONFIG_CONTIG;
  PixelType type = PixelType::kUint8;
  bool tiled = false;
};

PageInfo page_info(const TiffFile& file) {
  TIFF* tif = file.get();
  PageInfo page;
  uint16_t bits = 1, format = SAMPLEFORMAT_UINT;
  if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &page.width) || !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &page.height)) {
    file.fail("the TIFF has no image size");
  }
  TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bits);
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &format);
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &page.samples);
  TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &page.planar);
  page.tiled = TIFFIsTiled(tif) != 0;
  if (format == SAMPLEFORMAT_UINT && bits == 8) {
    page.type = PixelType::kUint8;
  } else if (format == SAMPLEFORMAT_UINT && bits == 16) {
    page.type = PixelType::kUint16;
  } else if (format == SAMPLEFORMAT_INT && bits == 16) {
    page.type = PixelType::kInt16;
  } else if (format == SAMPLEFORMAT_INT && bits == 32) {
    page.type = PixelType::kInt32;
  } else if (format == SAMPLEFORMAT_IEEEFP && bits == 32) {
    page.type = PixelType::kFloat32;
  } else {
    const char* kind = format == SAMPLEFORMAT_INT ? "int" : format == SAMPLEFORMAT_IEEEFP ? "float" : "uint";
    throw FileImageError(file.path() + ": " + std::to_string(bits) + "-bit " + kind +
                         " samples are not supported (uint8, uint16, int16, int32 and float32 are)");
  }
  if (page.width == 0 || page.height == 0 || page.width > INT32_MAX || page.height > INT32_MAX) {
    file.fail("the TIFF has an invalid image size");
  }
  if (page.samples == 0) file.fail("the TIFF has no samples per pixel");
  return page;
}

/// Where each page goes in (C, Z): page p holds channel plane channel_of(p) (times the page's samples) at depth
/// z_of(p). Pages run z within channel (OME XYZCT) or channel within z (OME XYCZT, ImageJ).
struct PageMap {
  int32_t page_channels = 1, depth = 1;
  bool z_fastest = false;
  int32_t significant_bits = 0;  // OME-XML Pixels SignificantBits (e.g. 12 for a 12-bit camera); 0: not declared
  int32_t channel_of(int32_t page) const { return z_fastest ? page / depth : page % page_channels; }
  int32_t z_of(int32_t page) const { return z_fastest ? page % depth : page / page_channels; }
};

/// The text of the current page's ImageDescription tag ("" when it has none).
std::string image_description(TIFF* tif) {
  const char* text = nullptr;
  return TIFFGetField(tif, TIFFTAG_IMAGEDESCRIPTION, &text) && text != nullptr ? std::string(text) : std::string();
}

bool is_name_char(char ch) {
  return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.';
}

/// The start tag of the first element named `name` (any namespace prefix) at or after `from`, without its '<' and
/// '>'; empty when there is none. Enough XML for OME's flat attributes, without an XML library.
std::string_view find_start_tag(std::string_view xml, std::string_view name, size_t* from) {
  for (size_t at = xml.find(name, *from); at != std::string_view::npos; at = xml.find(name, at + 1)) {
    const size_t after = at + name.size();
    if (after >= xml.size() || is_name_char(xml[after]) || xml[after] == ':') continue;
    size_t open = at;
    while (open > 0 && (is_name_char(xml[open - 1]) || xml[open - 1] == ':')) --open;
    if (open == 0 || xml[open - 1] != '<') continue;
    if (open != at && xml[at - 1] != ':') continue;  // "<XPixels", not a prefixed "<ome:Pixels"
    const size_t close = xml.find('>', after);
    if (close == std::string_view::npos) return {};
    *from = close;
    return xml.substr(open, close - open);
  }
  return {};
}

/// The value of attribute `name` in start tag `tag`, or "" when absent ("SizeZ" does not match "PhysicalSizeZ").
std::string_view xml_attribute(std::string_view tag, std::string_view name) {
  for (size_t at = tag.find(name); at != std::string_view::npos; at = tag.find(name, at + 1)) {
    if (at == 0 || !std::isspace(static_cast<unsigned char>(tag[at - 1]))) continue;
    size_t k = at + name.size();
    while (k < tag.size() && std::isspace(static_cast<unsigned char>(tag[k]))) ++k;
    if (k >= tag.size() || tag[k] != '=') continue;
    ++k;
    while (k < tag.size() && std::isspace(static_cast<unsigned char>(tag[k]))) ++k;
    if (k >= tag.size() || (tag[k] != '"' && tag[k] != '\'')) continue;
    const size_t end = tag.find(tag[k], k + 1);
    if (end == std::string_view::npos) return {};
    return tag.substr(k + 1, end - k - 1);
  }
  return {};
}

/// A positive count from metadata text, or 0 when it is not one.
int64_t parse_count(std::string_view text) {
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size() && value > 0 ? value : 0;
}

/// The pages of an OME-TIFF as its first Pixels element orders them; `samples` of a page count in SizeC.
PageMap ome_page_map(const TiffFile& file, std::string_view xml, int32_t pages, int32_t samples) {
  size_t from = 0;
  if (find_start_tag(xml, "Image", &from).empty()) file.fail("the OME-XML description has no Image element");
  if (!find_start_tag(xml, "Image", &from).empty()) {
    file.fail("the OME-XML describes several images (series); only one image per file is supported");
  }
  from = 0;
  const std::string_view pixels = find_start_tag(xml, "Pixels", &from);
  const int64_t size_c = parse_count(xml_attribute(pixels, "SizeC"));
  const int64_t size_z = parse_count(xml_attribute(pixels, "SizeZ"));
  const int64_t size_t = parse_count(xml_attribute(pixels, "SizeT"));
  const std::string_view order = xml_attribute(pixels, "DimensionOrder");
  if (size_c == 0 || size_z == 0 || size_t == 0 || order.size() != 5 || order.substr(0, 2) != "XY" ||
      order.find('Z') == std::string_view::npos || order.find('C') == std::string_view::npos ||
      order.find('T') == std::string_view::npos) {
    file.fail("the OME-XML Pixels element has no valid SizeC, SizeZ, SizeT and DimensionOrder");
  }
  if (size_t != 1) {
    file.fail("the OME-XML says SizeT=" + std::to_string(size_t) + ": time series are not supported (T must be 1)");
  }
  const std::string sizes = "SizeZ=" + std::to_string(size_z) + ", SizeC=" + std::to_string(size_c);
  if (size_c % samples != 0 || size_z * (size_c / samples) != pages) {
    file.fail("the OME-XML says " + sizes + " but the file has " + std::to_string(pages) + " pages of " +
              std::to_string(samples) + " samples");
  }
  int64_t bits = 0;
  if (const std::string_view text = xml_attribute(pixels, "SignificantBits"); !text.empty()) {
    bits = parse_count(text);
    if (bits < 1 || bits > 32) {
      file.fail("the OME-XML says SignificantBits=\"" + std::string(text) + "\", not a number of bits from 1 to 32");
    }
  }
  // With T = 1, only whether Z or C varies faster matters (XYZTC reads as XYZCT).
  return {static_cast<int32_t>(size_c / samples), static_cast<int32_t>(size_z), order.find('Z') < order.find('C'),
          static_cast<int32_t>(bits)};
}

/// The pages of an ImageJ hyperstack: `images` planes ordered channel, then slice (z), then frame (t).
PageMap imagej_page_map(const TiffFile& file, std::string_view text, int32_t pages) {
  int64_t images = 0, channels = 0, slices = 0, frames = 0;
  for (size_t at = 0; at < text.size();) {
    const size_t end = std::min(text.find('\n', at), text.size());
    const std::string_view line = text.substr(at, end - at);
    const size_t eq = line.find('=');
    if (eq != std::string_view::npos) {
      const std::string_view key = line.substr(0, eq), value = line.substr(eq + 1);
      int64_t* field = key == "images"     ? &images
                       : key == "channels" ? &channels
                       : key == "slices"   ? &slices
                       : key == "frames"   ? &frames
                                           : nullptr;
      if (field != nullptr && (*field = parse_count(value)) == 0) {
        file.fail("the ImageJ description has an invalid '" + std::string(line) + "'");
      }
    }
    at = end + 1;
  }
  if (frames > 1) {
    file.fail("the ImageJ description says frames=" + std::to_string(frames) +
              ": time series are not supported (T must be 1)");
  }
  if (channels == 0 && slices == 0) return {pages, 1, false};  // a plain stack: pages as channels, as without metadata
  channels = std::max<int64_t>(channels, 1);
  slices = std::max<int64_t>(slices, 1);
  if (channels * slices != pages || (images != 0 && images != pages)) {
    file.fail("the ImageJ description says images=" + std::to_string(images) + ", channels=" +
              std::to_string(channels) + ", slices=" + std::to_string(slices) + " but the file has " +
              std::to_string(pages) + " pages");
  }
  return {static_cast<int32_t>(channels), static_cast<int32_t>(slices), false};
}

/// tifffile's own "shaped" description ({"shape": [...]}) names no axes: a shape with more than one page axis
/// (say [2, 5, H, W]) cannot be told apart as channels and Z, so it is refused rather than read as 10 channels.
void check_shaped_description(const TiffFile& file, std::string_view text, int32_t samples) {
  const size_t key = text.find("\"shape\"");
  if (text.empty() || text.front() != '{' || key == std::string_view::npos) return;
  const size_t open = text.find('[', key), close = text.find(']', key);
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) return;
  std::vector<int64_t> shape;
  for (size_t at = open + 1; at < close;) {
    while (at < close && !std::isdigit(static_cast<unsigned char>(text[at]))) ++at;
    size_t end = at;
    while (end < close && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
    if (end > at) shape.push_back(parse_count(text.substr(at, end - at)));
    at = end;
  }
  const size_t plane_dims = samples > 1 ? 3 : 2;
  if (shape.size() <= plane_dims) return;
  const auto page_axes = std::count_if(shape.begin(), shape.end() - static_cast<ptrdiff_t>(plane_dims),
                                       [](int64_t n) { return n != 1; });
  if (page_axes > 1) {
    file.fail("tifffile's description gives the shape " + std::string(text.substr(open, close - open + 1)) +
              " without axis names: pages cannot be told apart as channels and Z planes (write it with ome=True or "
              "imagej=True)");
  }
}

/// Page `index` has the first page's layout, or FileImageError.
void check_like_first(const TiffFile& file, const PageInfo& first, const PageInfo& page, int32_t index) {
  if (page.width != first.width || page.height != first.height || page.type != first.type ||
      page.samples != first.samples) {
    throw FileImageError(file.path() + ": page " + std::to_string(index) + " differs from page 0 in size, dtype or "
                         "samples; only pages of one shape can be read as channels or Z planes");
  }
}

/// Where each of the file's `pages` pages goes, from the first page's description (checked against the count), and
/// the image's shape; or FileImageError when they disagree.
ImageFileShape page_layout(const TiffFile& file, const PageInfo& first, const std::string& description, int32_t pages,
                           PageMap* page_map) {
  const int32_t samples = first.samples;
  PageMap map{pages, 1, false};
  if (description.find("<OME") != std::string::npos || description.find(":OME") != std::string::npos) {
    map = ome_page_map(file, description, pages, samples);
  } else if (description.starts_with("ImageJ=")) {
    map = imagej_page_map(file, description, pages);
  } else {
    check_shaped_description(file, description, samples);
  }
  if (map.page_channels > 1 && samples > 1) {
    throw FileImageError(file.path() + ": " + std::to_string(map.page_channels) + " channel pages of " +
                         std::to_string(samples) + " samples each are not supported (pages or samples can be "
                         "channels, not both)");
  }
  if (map.significant_bits > 8 * pixel_size(first.type)) {
    file.fail("the OME-XML says SignificantBits=" + std::to_string(map.significant_bits) + ", more than the " +
              std::to_string(8 * pixel_size(first.type)) + " bits of its " + pixel_type_name(first.type) + " pixels");
  }
  *page_map = map;
  return {first.type, map.page_channels * samples, map.depth, static_cast<int32_t>(first.height),
          static_cast<int32_t>(first.width)};
}

/// The file's common page layout and where each page goes, every page's directory read and checked against the
/// first (the file is left on its last page); or FileImageError when pages differ from one another or from what
/// the metadata says.
ImageFileShape file_shape(const TiffFile& file, PageMap* page_map) {
  TIFF* tif = file.get();
  const PageInfo first = page_info(file);
  const std::string description = image_description(tif);  // page 0's, before the walk moves on
  int32_t pages = 1;
  // TIFFLastDirectory spares a one-page file (the common case) a failed read of a next page; a next page that
  // cannot be read is an error, not the end of the file.
  while (!TIFFLastDirectory(tif)) {
    if (!TIFFReadDirectory(tif)) file.fail("cannot read page " + std::to_string(pages) + " (truncated or corrupt?)");
    check_like_first(file, first, page_info(file), pages);
    ++pages;
  }
  return page_layout(file, first, description, pages, page_map);
}

/// Decodes plane `sample` of the current page (or all interleaved samples when `sample` < 0) into `dst`, whose
/// rows are `width * pixel_bytes` apart; never writes outside height rows of it.
void read_plane(const TiffFile& file, const PageInfo& page, int sample, uint8_t* dst, int64_t pixel_bytes) {
  TIFF* tif = file.get();
  const int64_t row_bytes = int64_t{page.width} * pixel_bytes;
  const uint16_t plane = static_cast<uint16_t>(sample < 0 ? 0 : sample);
  if (!page.tiled) {
    uint32_t rows_per_strip = 0;
    TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rows_per_strip);
    if (rows_per_strip == 0 || rows_per_strip > page.height) rows_per_strip = page.height;
    for (uint32_t y = 0; y < page.height; y += rows_per_strip) {
      const int64_t rows = std::min<int64_t>(rows_per_strip, page.height - y);
      const tmsize_t want = static_cast<tmsize_t>(rows * row_bytes);
      const tmsize_t got = TIFFReadEncodedStrip(tif, TIFFComputeStrip(tif, y, plane), dst + y * row_bytes, want);
      if (got != want) file.fail("cannot decode strip at row " + std::to_string(y) + " (truncated or corrupt?)");
    }
    return;
  }
  uint32_t tile_w = 0, tile_h = 0;
  if (!TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tile_w) || !TIFFGetField(tif, TIFFTAG_TILELENGTH, &tile_h) ||
      tile_w == 0 || tile_h == 0) {
    file.fail("the TIFF has no tile size");
  }
  const int64_t tile_row_bytes = int64_t{tile_w} * pixel_bytes;
  const tmsize_t tile_bytes = static_cast<tmsize_t>(tile_row_bytes * tile_h);
  thread_local std::vector<uint8_t> tile;
  tile.resize(static_cast<size_t>(tile_bytes));
  for (uint32_t ty = 0; ty < page.height; ty += tile_h) {
    for (uint32_t tx = 0; tx < page.width; tx += tile_w) {
      const tmsize_t got = TIFFReadEncodedTile(tif, TIFFComputeTile(tif, tx, ty, 0, plane), tile.data(), tile_bytes);
      if (got != tile_bytes) {
        file.fail("cannot decode tile at (" + std::to_string(ty) + ", " + std::to_string(tx) +
                  ") (truncated or corrupt?)");
      }
      const int64_t rows = std::min<int64_t>(tile_h, page.height - ty);
      const int64_t bytes = std::min<int64_t>(tile_w, page.width - tx) * pixel_bytes;
      for (int64_t r = 0; r < rows; ++r) {
        std::memcpy(dst + (ty + r) * row_bytes + tx * pixel_bytes, tile.data() + r * tile_row_bytes,
                    static_cast<size_t>(bytes));
      }
    }
  }
}

}  // namespace

ImageFileShape probe_tiff(const std::string& path, int32_t* significant_bits) {
  TiffFile file(path);
  PageMap map;
  const ImageFileShape shape = file_shape(file, &map);
  if (significant_bits != nullptr) *significant_bits = map.significant_bits;
  return shape;
}

ImageFileShape read_tiff(const std::string& path, const ImageFileShape& expected, std::vector<uint8_t>& pixels) {
  TiffFile file(path);
  const PageInfo page = page_info(file);
  // The pages are counted along the chain of directory offsets (TIFFNumberOfDirectories reads two fields of each,
  // parsing none), and each page's directory is parsed once, where it is decoded. Reading every directory to check
  // it and again to decode it cost twice libtiff's per-directory set-up (it sorts its tag table each time).
  const tdir_t count = TIFFLastDirectory(file.get()) ? 1 : TIFFNumberOfDirectories(file.get());
  if (count < 1 || count > static_cast<tdir_t>(std::numeric_limits<int32_t>::max())) {
    file.fail("cannot count the pages (corrupt directory chain?)");
  }
  PageMap map;
  const ImageFileShape shape = page_layout(file, page, image_description(file.get()), static_cast<int32_t>(count), &map);
  check_image_shape(path, shape, expected);
  pixels.resize(static_cast<size_t>(shape.bytes()));
  const int64_t elem = pixel_size(shape.type);
  const int64_t plane_bytes = int64_t{shape.height} * shape.width * elem;
  const int32_t pages = map.page_channels * map.depth;
  const int32_t samples = page.samples;
  thread_local std::vector<uint8_t> interleaved;
  for (int32_t p = 0; p < pages; ++p) {
    if (p > 0) {
      if (!TIFFReadDirectory(file.get())) file.fail("cannot read page " + std::to_string(p) + " (truncated or corrupt?)");
      check_like_first(file, page, page_info(file), p);
    }
    const int32_t z = map.z_of(p);
    // Sample s of this page is channel channel_of(p) * samples + s, stored as (C, Z, H, W).
    auto plane = [&](int32_t s) {
      return pixels.data() + ((int64_t{map.channel_of(p)} * samples + s) * shape.depth + z) * plane_bytes;
    };
    if (samples == 1) {
      read_plane(file, page, 0, plane(0), elem);
    } else if (page.planar == PLANARCONFIG_SEPARATE) {
      for (int32_t s = 0; s < samples; ++s) read_plane(file, page, s, plane(s), elem);
    } else {
      // Interleaved samples (H, W, S): decoded whole, then split into planes.
      interleaved.resize(static_cast<size_t>(plane_bytes * samples));
      read_plane(file, page, -1, interleaved.data(), elem * samples);
      const int64_t n = int64_t{shape.height} * shape.width;
      with_pixel_type(shape.type, [&]<typename T>(T) {
        const T* src = reinterpret_cast<const T*>(interleaved.data());
        for (int32_t s = 0; s < samples; ++s) {
          T* dst = reinterpret_cast<T*>(plane(s));
          for (int64_t i = 0; i < n; ++i) dst[i] = src[i * samples + s];
        }
      });
    }
  }
  return shape;
}

#else

ImageFileShape probe_tiff(const std::string& path, int32_t* /*significant_bits*/) {
  throw FileImageError(path + ": TIFF is not supported by this build of the core (LOADERBENCH_WITH_TIFF=OFF)");
}
ImageFileShape read_tiff(const std::string& path, const ImageFileShape&, std::vector<uint8_t>&) {
  return probe_tiff(path);
}

#endif

}  // namespace loaderbench
