// TIFF images with libtiff: strips or tiles, any compression libtiff was built with (none, deflate, LZW, zstd...),
// 8/16-bit unsigned or 32-bit float samples; channels are pages (tifffile's planar minisblack layout) or the
// samples of one page (planar or interleaved). Each file is opened, read and closed by the calling thread.
#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "loaderbench/file_images.h"

#ifdef LOADERBENCH_WITH_TIFF
#include <tiffio.h>
#endif

namespace loaderbench {

#ifdef LOADERBENCH_WITH_TIFF
namespace {

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
    errno = 0;
    tif_ = TIFFOpenExt(path.c_str(), "r", opts.options);
    if (tif_ == nullptr) {
      const int err = errno;
      if (err == ENOENT || err == EACCES || err == EISDIR) {
        throw FileImageError(path + ": cannot read: " + std::strerror(err));
      }
      fail("cannot open this TIFF (truncated or corrupt?)");
    }
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
  } else if (format == SAMPLEFORMAT_IEEEFP && bits == 32) {
    page.type = PixelType::kFloat32;
  } else {
    const char* kind = format == SAMPLEFORMAT_INT ? "int" : format == SAMPLEFORMAT_IEEEFP ? "float" : "uint";
    throw FileImageError(file.path() + ": " + std::to_string(bits) + "-bit " + kind +
                         " samples are not supported (uint8, uint16 and float32 are)");
  }
  if (page.width == 0 || page.height == 0 || page.width > INT32_MAX || page.height > INT32_MAX) {
    file.fail("the TIFF has an invalid image size");
  }
  if (page.samples == 0) file.fail("the TIFF has no samples per pixel");
  return page;
}

/// Pages and their common layout, or FileImageError when the pages differ from one another.
ImageFileShape file_shape(const TiffFile& file, PageInfo* first_page) {
  TIFF* tif = file.get();
  const PageInfo first = page_info(file);
  int32_t pages = 1;
  while (TIFFReadDirectory(tif)) {
    const PageInfo page = page_info(file);
    if (page.width != first.width || page.height != first.height || page.type != first.type ||
        page.samples != first.samples) {
      throw FileImageError(file.path() + ": page " + std::to_string(pages) + " differs from page 0 in size, dtype or "
                           "samples; only pages of one shape can be read as channels");
    }
    ++pages;
  }
  if (pages > 1 && first.samples > 1) {
    throw FileImageError(file.path() + ": " + std::to_string(pages) + " pages of " + std::to_string(first.samples) +
                         " samples each are not supported (pages or samples can be channels, not both)");
  }
  if (!TIFFSetDirectory(tif, 0)) file.fail("cannot return to the first page");
  if (first_page != nullptr) *first_page = first;
  return {first.type, pages * int32_t{first.samples}, static_cast<int32_t>(first.height),
          static_cast<int32_t>(first.width)};
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

ImageFileShape probe_tiff(const std::string& path) {
  TiffFile file(path);
  return file_shape(file, nullptr);
}

void read_tiff(const std::string& path, const ImageFileShape& expected, std::vector<uint8_t>& pixels) {
  TiffFile file(path);
  PageInfo page;
  const ImageFileShape found = file_shape(file, &page);
  if (!(found == expected)) {
    throw FileImageError(path + ": the image is " + describe(found) + " (CxHxW), but the dataset's images are " +
                         describe(expected));
  }
  pixels.resize(static_cast<size_t>(expected.bytes()));
  const int64_t elem = pixel_size(expected.type);
  const int64_t plane_bytes = int64_t{expected.height} * expected.width * elem;
  if (page.samples == 1) {
    for (int32_t c = 0; c < expected.channels; ++c) {
      if (c > 0 && !TIFFReadDirectory(file.get())) file.fail("cannot read page " + std::to_string(c));
      read_plane(file, page, 0, pixels.data() + c * plane_bytes, elem);
    }
  } else if (page.planar == PLANARCONFIG_SEPARATE) {
    for (int32_t c = 0; c < expected.channels; ++c) read_plane(file, page, c, pixels.data() + c * plane_bytes, elem);
  } else {
    // Interleaved samples (H, W, C): decoded whole, then split into planes.
    thread_local std::vector<uint8_t> interleaved;
    interleaved.resize(pixels.size());
    read_plane(file, page, -1, interleaved.data(), elem * page.samples);
    const int64_t n = int64_t{expected.height} * expected.width;
    for (int64_t i = 0; i < n; ++i) {
      for (int32_t c = 0; c < expected.channels; ++c) {
        std::memcpy(pixels.data() + c * plane_bytes + i * elem, interleaved.data() + (i * expected.channels + c) * elem,
                    static_cast<size_t>(elem));
      }
    }
  }
}

#else

ImageFileShape probe_tiff(const std::string& path) {
  throw FileImageError(path + ": TIFF is not supported by this build of the core (LOADERBENCH_WITH_TIFF=OFF)");
}
void read_tiff(const std::string& path, const ImageFileShape&, std::vector<uint8_t>&) { probe_tiff(path); }

#endif

}  // namespace loaderbench
