// The TIFF and OME-Zarr readers against files written here (libtiff for TIFF, hand-made chunks for Zarr).
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <tuple>
#include <vector>

#include "loaderbench/batch_loader.h"
#include "loaderbench/file_images.h"

#ifdef LOADERBENCH_WITH_TIFF
#include <tiffio.h>
#endif
#ifdef LOADERBENCH_WITH_ZARR
#include <zlib.h>
#endif

namespace loaderbench {
namespace {

namespace fs = std::filesystem;

fs::path temp_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("loaderbench_file_images_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write_text(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

void write_bytes(const fs::path& path, const void* data, size_t n) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary).write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
}

/// Distinct-looking values; negative ones too for signed integers.
template <typename T>
std::vector<T> ramp(size_t n, int seed) {
  constexpr int kShift = std::is_integral_v<T> && std::is_signed_v<T> ? 125 : 0;
  std::vector<T> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<T>(static_cast<int>((i * 7 + seed * 13) % 250) - kShift);
  return v;
}

template <typename T>
std::vector<uint8_t> as_bytes(const std::vector<T>& values) {
  std::vector<uint8_t> bytes(values.size() * sizeof(T));
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

#ifdef LOADERBENCH_WITH_TIFF
struct TiffLayout {
  bool tiled = false;
  int samples = 1;  // samples per page (interleaved); the planes are split into pages of this many
  uint16_t compression = COMPRESSION_NONE;
  std::string description;  // the first page's ImageDescription (OME-XML, ImageJ), none when empty
};

/// Writes `planes` (H, W) planes of T: planes / samples pages, page p holding planes p * samples + s as samples.
template <typename T>
void write_tiff(const fs::path& path, const std::vector<T>& pixels, int planes, int h, int w, TiffLayout layout) {
  TIFF* tif = TIFFOpen(path.c_str(), "w");
  ASSERT_NE(tif, nullptr);
  const uint16_t format = std::is_floating_point_v<T> ? SAMPLEFORMAT_IEEEFP
                          : std::is_signed_v<T>       ? SAMPLEFORMAT_INT
                                                      : SAMPLEFORMAT_UINT;
  const int samples = layout.samples;
  const int pages = planes / samples;
  for (int p = 0; p < pages; ++p) {
    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, w);
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, h);
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, static_cast<int>(8 * sizeof(T)));
    TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, format);
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, samples);
    TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(tif, TIFFTAG_COMPRESSION, layout.compression);
    if (p == 0 && !layout.description.empty()) TIFFSetField(tif, TIFFTAG_IMAGEDESCRIPTION, layout.description.c_str());
    std::vector<T> plane(static_cast<size_t>(h) * w * samples);
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        for (int s = 0; s < samples; ++s) {
          plane[(static_cast<size_t>(y) * w + x) * samples + s] = pixels[((p * samples + s) * h + y) * w + x];
        }
      }
    }
    if (layout.tiled) {
      const int tile = 16;
      TIFFSetField(tif, TIFFTAG_TILEWIDTH, tile);
      TIFFSetField(tif, TIFFTAG_TILELENGTH, tile);
      std::vector<T> buf(static_cast<size_t>(tile) * tile * samples);
      for (int ty = 0; ty < h; ty += tile) {
        for (int tx = 0; tx < w; tx += tile) {
          std::fill(buf.begin(), buf.end(), T{});
          for (int y = ty; y < std::min(h, ty + tile); ++y) {
            for (int x = tx; x < std::min(w, tx + tile); ++x) {
              for (int s = 0; s < samples; ++s) {
                buf[((y - ty) * tile + (x - tx)) * samples + s] = plane[(static_cast<size_t>(y) * w + x) * samples + s];
              }
            }
          }
          ASSERT_GE(TIFFWriteTile(tif, buf.data(), tx, ty, 0, 0), 0);
        }
      }
    } else {
      TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, 3);
      for (int y = 0; y < h; ++y) ASSERT_EQ(TIFFWriteScanline(tif, &plane[static_cast<size_t>(y) * w * samples], y), 1);
    }
    ASSERT_TRUE(TIFFWriteDirectory(tif));
  }
  TIFFClose(tif);
}

template <typename T>
void expect_reads_back(TiffLayout layout, int c, PixelType type) {
  const fs::path dir = temp_dir("tiff");
  const int h = 37, w = 21;
  const std::vector<T> pixels = ramp<T>(static_cast<size_t>(c) * h * w, 1);
  write_tiff(dir / "a.tif", pixels, c, h, w, layout);
  const ImageFileShape shape = probe_tiff((dir / "a.tif").string());
  EXPECT_EQ(shape, (ImageFileShape{type, c, 1, h, w}));
  std::vector<uint8_t> out;
  read_tiff((dir / "a.tif").string(), shape, out);
  EXPECT_EQ(out, as_bytes(pixels));
  fs::remove_all(dir);
}

/// The FileImageError message reading `path` as `shape` gives ("no error" when it reads).
std::string tiff_error(const fs::path& path, const ImageFileShape& shape) {
  std::vector<uint8_t> out;
  try {
    read_tiff(path.string(), shape, out);
  } catch (const FileImageError& e) {
    return e.what();
  }
  return "no error";
}

/// An OME-XML description as tifffile writes it (PhysicalSizeZ first: it must not be taken for SizeZ).
std::string ome_xml(int c, int z, int t, const std::string& order, int h, int w) {
  return R"(<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">)"
         R"(<Image ID="Image:0" Name="a"><Pixels ID="Pixels:0" PhysicalSizeZ="0.5" DimensionOrder=")" + order +
         R"(" Type="uint16" SizeX=")" + std::to_string(w) + R"(" SizeY=")" + std::to_string(h) + R"(" SizeC=")" +
         std::to_string(c) + R"(" SizeZ=")" + std::to_string(z) + R"(" SizeT=")" + std::to_string(t) +
         R"("><TiffData IFD="0" PlaneCount=")" + std::to_string(c * z * t) + R"("/></Pixels></Image></OME>)";
}

/// Writes a (C, Z, H, W) volume as C * Z pages in the order the description gives (z within c, or c within z),
/// and checks it reads back as that volume.
template <typename T>
void expect_volume_reads_back(TiffLayout layout, bool z_fastest, int c, int z, PixelType type) {
  const fs::path dir = temp_dir("tiff_volume");
  const int h = 19, w = 34;
  const size_t plane = static_cast<size_t>(h) * w;
  const std::vector<T> volume = ramp<T>(c * z * plane, 4);
  std::vector<T> paged(volume.size());
  for (int ci = 0; ci < c; ++ci) {
    for (int zi = 0; zi < z; ++zi) {
      const int page = z_fastest ? ci * z + zi : zi * c + ci;
      std::copy_n(volume.begin() + (ci * z + zi) * plane, plane, paged.begin() + page * plane);
    }
  }
  write_tiff(dir / "v.tif", paged, c * z, h, w, layout);
  const ImageFileShape shape = probe_tiff((dir / "v.tif").string());
  EXPECT_EQ(shape, (ImageFileShape{type, c, z, h, w}));
  std::vector<uint8_t> out;
  read_tiff((dir / "v.tif").string(), shape, out);
  EXPECT_EQ(out, as_bytes(volume));
  fs::remove_all(dir);
}

TEST(TiffReader, StripsPagesAsChannels) { expect_reads_back<uint16_t>({}, 3, PixelType::kUint16); }
TEST(TiffReader, TiledDeflateFloat) {
  expect_reads_back<float>({.tiled = true, .compression = COMPRESSION_ADOBE_DEFLATE}, 2, PixelType::kFloat32);
}
TEST(TiffReader, InterleavedLzwUint8) {
  expect_reads_back<uint8_t>({.samples = 3, .compression = COMPRESSION_LZW}, 3, PixelType::kUint8);
}
TEST(TiffReader, SinglePage) { expect_reads_back<uint8_t>({}, 1, PixelType::kUint8); }
TEST(TiffReader, SignedInt16TiledLzw) {
  expect_reads_back<int16_t>({.tiled = true, .compression = COMPRESSION_LZW}, 2, PixelType::kInt16);
}
TEST(TiffReader, SignedInt32Strips) { expect_reads_back<int32_t>({}, 3, PixelType::kInt32); }

TEST(TiffReader, OmeVolumeZWithinChannel) {
  expect_volume_reads_back<uint16_t>(
      {.tiled = true, .compression = COMPRESSION_ADOBE_DEFLATE, .description = ome_xml(2, 3, 1, "XYZCT", 19, 34)},
      true, 2, 3, PixelType::kUint16);
}
TEST(TiffReader, OmeVolumeChannelWithinZ) {
  expect_volume_reads_back<float>({.description = ome_xml(2, 4, 1, "XYCZT", 19, 34)}, false, 2, 4,
                                  PixelType::kFloat32);
  expect_volume_reads_back<int16_t>({.compression = COMPRESSION_LZW, .description = ome_xml(3, 2, 1, "XYCTZ", 19, 34)},
                                    false, 3, 2, PixelType::kInt16);
}
TEST(TiffReader, ImageJHyperstack) {
  expect_volume_reads_back<uint8_t>(
      {.description = "ImageJ=1.11a\nimages=6\nchannels=2\nslices=3\nhyperstack=true\nmode=grayscale\n"}, false,
      2, 3, PixelType::kUint8);
  expect_volume_reads_back<uint16_t>({.tiled = true, .description = "ImageJ=1.11a\nimages=5\nslices=5\n"}, false, 1,
                                     5, PixelType::kUint16);
}

TEST(TiffReader, OmeVolumeOfInterleavedSamples) {
  // Z pages of 3 interleaved samples each: the samples are the channels (SizeC counts them).
  const fs::path dir = temp_dir("tiff_rgb_volume");
  const int c = 3, z = 2, h = 5, w = 6;
  const size_t plane = static_cast<size_t>(h) * w;
  const std::vector<uint8_t> volume = ramp<uint8_t>(c * z * plane, 5);  // (C, Z, H, W)
  std::vector<uint8_t> planes(volume.size());                          // page z, sample c
  for (int ci = 0; ci < c; ++ci) {
    for (int zi = 0; zi < z; ++zi) {
      std::copy_n(volume.begin() + (ci * z + zi) * plane, plane, planes.begin() + (zi * c + ci) * plane);
    }
  }
  write_tiff(dir / "rgb.tif", planes, c * z, h, w, {.samples = 3, .description = ome_xml(3, 2, 1, "XYCZT", h, w)});
  const ImageFileShape shape = probe_tiff((dir / "rgb.tif").string());
  EXPECT_EQ(shape, (ImageFileShape{PixelType::kUint8, c, z, h, w}));
  std::vector<uint8_t> out;
  read_tiff((dir / "rgb.tif").string(), shape, out);
  EXPECT_EQ(out, volume);
  fs::remove_all(dir);
}

TEST(TiffReader, MetadataThatDisagreesWithThePagesIsRefused) {
  const fs::path dir = temp_dir("tiff_bad_meta");
  const std::vector<uint16_t> pages = ramp<uint16_t>(6 * 8 * 8, 6);
  const ImageFileShape any{PixelType::kUint16, 6, 1, 8, 8};
  auto refused = [&](const std::string& description, const std::string& expect) {
    const fs::path path = dir / "bad.tif";
    write_tiff(path, pages, 6, 8, 8, {.description = description});
    std::string message;
    try {
      probe_tiff(path.string());
      message = "no error";
    } catch (const FileImageError& e) {
      message = e.what();
    }
    EXPECT_NE(message.find("bad.tif: "), std::string::npos) << message;
    EXPECT_NE(message.find(expect), std::string::npos) << message;
    EXPECT_EQ(tiff_error(path, any).find("no error"), std::string::npos);
  };
  refused(ome_xml(2, 2, 1, "XYZCT", 8, 8), "says SizeZ=2, SizeC=2 but the file has 6 pages");
  refused(ome_xml(2, 1, 3, "XYZCT", 8, 8), "SizeT=3: time series are not supported");
  refused(ome_xml(2, 3, 1, "XYZQT", 8, 8), "no valid SizeC, SizeZ, SizeT and DimensionOrder");
  std::string two_images = ome_xml(2, 3, 1, "XYZCT", 8, 8);
  two_images.insert(two_images.find("</OME>"), R"(<Image ID="Image:1"><Pixels ID="Pixels:1" SizeC="1"/></Image>)");
  refused(two_images, "several images");
  refused("ImageJ=1.11a\nimages=6\nchannels=2\nslices=2\n", "channels=2, slices=2 but the file has 6 pages");
  refused("ImageJ=1.11a\nimages=6\nchannels=2\nframes=3\n", "frames=3: time series are not supported");
  refused("ImageJ=1.11a\nimages=6\nslices=x\n", "invalid 'slices=x'");
  refused(R"({"shape": [2, 3, 8, 8]})", "without axis names");
  // A plain shaped description with one page axis is pages as channels, as without metadata.
  write_tiff(dir / "shaped.tif", pages, 6, 8, 8, {.description = R"({"shape": [6, 8, 8]})"});
  EXPECT_EQ(probe_tiff((dir / "shaped.tif").string()), any);
  fs::remove_all(dir);
}

// Pages of another size or dtype than page 0 are refused by the probe and by a read (which checks each page where it
// decodes it), naming the file and the page.
TEST(TiffReader, APageUnlikeTheFirstIsRefused) {
  const fs::path dir = temp_dir("tiff_mixed_pages");
  auto write_pages = [&](const fs::path& path, int odd_page, int odd_width, int odd_bits) {
    TIFF* tif = TIFFOpen(path.c_str(), "w");
    ASSERT_NE(tif, nullptr);
    for (int p = 0; p < 3; ++p) {
      const int w = p == odd_page ? odd_width : 8;
      const int bits = p == odd_page ? odd_bits : 8;
      TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, w);
      TIFFSetField(tif, TIFFTAG_IMAGELENGTH, 8);
      TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, bits);
      TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, SAMPLEFORMAT_UINT);
      TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 1);
      TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
      TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
      TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, 8);
      std::vector<uint8_t> plane(static_cast<size_t>(8) * w * (bits / 8), static_cast<uint8_t>(p));
      ASSERT_NE(TIFFWriteEncodedStrip(tif, 0, plane.data(), static_cast<tmsize_t>(plane.size())), -1);
      ASSERT_TRUE(TIFFWriteDirectory(tif));
    }
    TIFFClose(tif);
  };
  write_pages(dir / "good.tif", -1, 8, 8);
  const ImageFileShape shape = probe_tiff((dir / "good.tif").string());
  ASSERT_EQ(shape, (ImageFileShape{PixelType::kUint8, 3, 1, 8, 8}));
  std::vector<uint8_t> out;
  read_tiff((dir / "good.tif").string(), shape, out);
  EXPECT_EQ(out[64 * 2], 2);  // page 2's pixels in plane 2
  for (const auto& [page, width, bits] : {std::tuple{1, 9, 8}, std::tuple{2, 8, 16}}) {
    const fs::path path = dir / ("odd" + std::to_string(page) + ".tif");
    write_pages(path, page, width, bits);
    const std::string expect = "odd" + std::to_string(page) + ".tif: page " + std::to_string(page) +
                               " differs from page 0";
    std::string probed = "no error", read = "no error";
    try {
      probe_tiff(path.string());
    } catch (const FileImageError& e) {
      probed = e.what();
    }
    try {
      read_tiff(path.string(), shape, out);
    } catch (const FileImageError& e) {
      read = e.what();
    }
    EXPECT_NE(probed.find(expect), std::string::npos) << probed;
    EXPECT_NE(read.find(expect), std::string::npos) << read;
  }
  fs::remove_all(dir);
}

TEST(TiffReader, ErrorsNameTheFile) {
  const fs::path dir = temp_dir("tiff_errors");
  const std::vector<uint16_t> pixels = ramp<uint16_t>(2 * 16 * 16, 2);
  write_tiff(dir / "good.tif", pixels, 2, 16, 16, {});
  const ImageFileShape shape = probe_tiff((dir / "good.tif").string());
  std::vector<uint8_t> out;
  auto message = [&](const fs::path& p) {
    try {
      read_tiff(p.string(), shape, out);
    } catch (const FileImageError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(dir / "missing.tif").find("missing.tif: cannot read"), std::string::npos);
  write_tiff(dir / "small.tif", ramp<uint16_t>(2 * 8 * 16, 2), 2, 8, 16, {});
  EXPECT_NE(message(dir / "small.tif").find("the image is 2x8x16 uint16 (CxHxW)"), std::string::npos);
  write_tiff(dir / "volume.tif", pixels, 2, 16, 16, {.description = ome_xml(1, 2, 1, "XYZCT", 16, 16)});
  EXPECT_NE(message(dir / "volume.tif").find("the image is 1x2x16x16 uint16 (CxZxHxW)"), std::string::npos);
  const auto size = fs::file_size(dir / "good.tif");
  fs::copy_file(dir / "good.tif", dir / "cut.tif");
  fs::resize_file(dir / "cut.tif", size / 3);
  const std::string cut = message(dir / "cut.tif");
  EXPECT_NE(cut.find("cut.tif"), std::string::npos) << cut;
  EXPECT_EQ(cut.find("no error"), std::string::npos);
  const std::string junk = "II*\0 this is no TIFF directory";
  write_bytes(dir / "junk.tif", junk.data(), junk.size());
  EXPECT_NE(message(dir / "junk.tif").find("junk.tif: "), std::string::npos) << message(dir / "junk.tif");
  fs::remove_all(dir);
}

// Files under 256 KiB are parsed from one read into memory, larger ones through libtiff's map: both read exactly,
// multi-page files included.
TEST(TiffReader, SmallAndLargeFilesReadBackExactly) {
  const fs::path dir = temp_dir("tiff_sizes");
  for (const int side : {16, 300}) {
    const std::vector<uint16_t> pixels = ramp<uint16_t>(size_t{2} * side * side, 3);
    const fs::path path = dir / ("p" + std::to_string(side) + ".tif");
    write_tiff(path, pixels, 2, side, side, {});
    EXPECT_EQ(fs::file_size(path) >= (256 << 10), side == 300);
    const ImageFileShape shape = probe_tiff(path.string());
    EXPECT_EQ(shape, (ImageFileShape{PixelType::kUint16, 2, 1, side, side}));
    std::vector<uint8_t> out;
    read_tiff(path.string(), shape, out);
    EXPECT_EQ(out, as_bytes(pixels)) << side;
  }
  fs::remove_all(dir);
}

// A file cut anywhere is an error naming it, never a read past the bytes held (ASan checks the in-memory reads).
TEST(TiffReader, EveryTruncationIsAnErrorNamingTheFile) {
  const fs::path dir = temp_dir("tiff_cuts");
  const std::vector<uint8_t> pixels = ramp<uint8_t>(2 * 12 * 10, 5);
  write_tiff(dir / "whole.tif", pixels, 2, 12, 10, {});
  const ImageFileShape shape = probe_tiff((dir / "whole.tif").string());
  const auto size = fs::file_size(dir / "whole.tif");
  for (uintmax_t cut = 0; cut < size; cut += 7) {
    const fs::path path = dir / ("cut" + std::to_string(cut) + ".tif");
    fs::copy_file(dir / "whole.tif", path);
    fs::resize_file(path, cut);
    const std::string error = tiff_error(path, shape);
    EXPECT_NE(error.find(path.filename().string() + ": "), std::string::npos) << cut << ": " << error;
    fs::remove(path);
  }
  fs::remove_all(dir);
}

// A FIFO (or a directory) where a TIFF should be is one error naming it; opening the FIFO must not wait for a writer.
TEST(TiffReader, AFifoOrADirectoryIsRefusedNotWaitedOn) {
  const fs::path dir = temp_dir("tiff_fifo");
  write_tiff(dir / "good.tif", ramp<uint8_t>(8 * 8, 1), 1, 8, 8, {});
  const ImageFileShape shape = probe_tiff((dir / "good.tif").string());
  ASSERT_EQ(::mkfifo((dir / "pipe.tif").c_str(), 0600), 0);
  fs::create_directory(dir / "folder.tif");
  EXPECT_NE(tiff_error(dir / "pipe.tif", shape).find("pipe.tif: cannot read"), std::string::npos);
  EXPECT_NE(tiff_error(dir / "folder.tif", shape).find("folder.tif: cannot read"), std::string::npos);
  fs::remove_all(dir);
}

TEST(FileImageRows, BatchesMatchTheFilesExactlyOnce) {
  const fs::path dir = temp_dir("rows");
  std::vector<std::string> paths;
  std::vector<std::vector<uint8_t>> images;
  for (int i = 0; i < 10; ++i) {
    images.push_back(ramp<uint8_t>(2 * 8 * 8, i));
    paths.push_back((dir / ("img_" + std::to_string(i) + ".tif")).string());
    write_tiff(paths.back(), images.back(), 2, 8, 8, {});
  }
  auto dataset = std::make_shared<FileImageDataset>(ImageFileFormat::kTiff, paths);
  TransformOptions transform;
  transform.output = OutputType::kUint8;
  transform.scale = true;
  auto rows = std::make_shared<FileImageRows>(dataset, transform);
  LoaderOptions options;
  options.batch_size = 3;
  options.num_threads = 2;
  options.sampler.kind = SamplerKind::kRandom;
  auto pool = BufferPool::create(3 * rows->sample_bytes(), 4);
  EpochIterator epoch(rows, pool, options, 0);
  std::vector<int> seen(10, 0);
  Batch batch;
  while (epoch.next(&batch)) {
    for (size_t k = 0; k < batch.indices.size(); ++k) {
      const int64_t row = batch.indices[k];
      ++seen[static_cast<size_t>(row)];
      EXPECT_EQ(std::memcmp(batch.buffer->bytes.get() + k * 128, images[static_cast<size_t>(row)].data(), 128), 0);
    }
  }
  EXPECT_EQ(seen, std::vector<int>(10, 1));
  fs::remove_all(dir);
}
#endif

#ifdef LOADERBENCH_WITH_ZARR
const char* kV3Group = R"({"zarr_format": 3, "node_type": "group", "attributes": {"ome": {"version": "0.5",
  "multiscales": [{"axes": [{"name": "c"}, {"name": "y"}, {"name": "x"}], "datasets": [{"path": "s0"}]}]}}})";

std::string v3_array(const std::string& shape, const std::string& chunks, const std::string& dtype,
                     const std::string& codecs, const std::string& fill_value = "0") {
  return R"({"zarr_format": 3, "node_type": "array", "shape": )" + shape + R"(, "data_type": ")" + dtype +
         R"(", "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": )" + chunks +
         R"(}}, "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}}, "fill_value": )" +
         fill_value + R"(, "codecs": )" + codecs + "}";
}

/// The FileImageError message of probing and reading the image group at `item` ("no error" when it reads).
std::string zarr_error(const fs::path& item) {
  std::vector<uint8_t> out;
  try {
    read_ome_zarr(item.string(), probe_ome_zarr(item.string(), 1 << 20), out, 1 << 20);
  } catch (const FileImageError& e) {
    return e.what();
  }
  return "no error";
}

TEST(ZarrReader, V3EdgeChunksBigEndianGzip) {
  const fs::path dir = temp_dir("zarr");
  const fs::path item = dir / "img.zarr";
  write_text(item / "zarr.json", kV3Group);
  write_text(item / "s0" / "zarr.json",
             v3_array("[2, 5, 7]", "[1, 3, 4]", "uint16",
                      R"([{"name": "bytes", "configuration": {"endian": "big"}}, {"name": "gzip"}])", "515"));
  std::vector<uint16_t> image = ramp<uint16_t>(2 * 5 * 7, 3);
  for (int c = 0; c < 2; ++c) {
    for (int cy = 0; cy < 2; ++cy) {
      for (int cx = 0; cx < 2; ++cx) {
        std::vector<uint8_t> chunk(1 * 3 * 4 * 2, 0);
        for (int y = 0; y < 3; ++y) {
          for (int x = 0; x < 4; ++x) {
            const int iy = cy * 3 + y, ix = cx * 4 + x;
            if (iy >= 5 || ix >= 7) continue;
            const uint16_t v = image[(c * 5 + iy) * 7 + ix];
            chunk[(y * 4 + x) * 2] = static_cast<uint8_t>(v >> 8);
            chunk[(y * 4 + x) * 2 + 1] = static_cast<uint8_t>(v & 0xFF);
          }
        }
        uLongf packed_size = compressBound(chunk.size());
        std::vector<uint8_t> packed(packed_size);
        ASSERT_EQ(compress(packed.data(), &packed_size, chunk.data(), chunk.size()), Z_OK);
        write_bytes(item / "s0" / "c" / std::to_string(c) / std::to_string(cy) / std::to_string(cx), packed.data(),
                    packed_size);
      }
    }
  }
  const ImageFileShape shape = probe_ome_zarr(item.string(), 1 << 20);
  EXPECT_EQ(shape, (ImageFileShape{PixelType::kUint16, 2, 1, 5, 7}));
  std::vector<uint8_t> out;
  read_ome_zarr(item.string(), shape, out, 1 << 20);
  ASSERT_EQ(out.size(), image.size() * 2);
  EXPECT_EQ(std::memcmp(out.data(), image.data(), out.size()), 0);

  // A truncated chunk is an error naming its file, not a fill value.
  const fs::path victim = item / "s0" / "c" / "1" / "0" / "1";
  const auto victim_size = fs::file_size(victim);
  fs::resize_file(victim, victim_size / 2);
  EXPECT_NE(zarr_error(item).find("img.zarr/s0/c/1/0/1: "), std::string::npos) << zarr_error(item);
  fs::remove(victim);
  EXPECT_EQ(zarr_error(item), "no error");
  for (int y = 0; y < 3; ++y) {
    for (int x = 4; x < 7; ++x) image[(1 * 5 + y) * 7 + x] = 515;
  }
  // A missing chunk is the fill value (515 = 0x0203: its bytes swapped as the chunks' are), whole or at the edge.
  fs::remove(item / "s0" / "c" / "1" / "1" / "0");
  fs::remove(item / "s0" / "c" / "0" / "1" / "1");
  for (int y = 3; y < 5; ++y) {
    for (int x = 0; x < 4; ++x) image[(1 * 5 + y) * 7 + x] = 515;
    for (int x = 4; x < 7; ++x) image[(0 * 5 + y) * 7 + x] = 515;
  }
  read_ome_zarr(item.string(), shape, out, 1 << 20);
  EXPECT_EQ(out, as_bytes(image));
  // ... and so is an array with no chunks at all.
  fs::remove_all(item / "s0" / "c");
  read_ome_zarr(item.string(), shape, out, 1 << 20);
  EXPECT_EQ(out, as_bytes(std::vector<uint16_t>(image.size(), 515)));
  fs::remove_all(dir);
}

// Each thread remembers the last image's parsed metadata and reuses it only for byte-identical metadata files:
// images that differ in shape, type, fill value or level path, read in turn on one thread, each read as their own.
TEST(ZarrReader, ImagesWithDifferentMetadataReadInTurnEachReadAsTheirOwn) {
  const fs::path dir = temp_dir("zarr_memo");
  const std::string v2_group = R"({"multiscales": [{"axes": ["c", "y", "x"], "datasets": [{"path": "0"}]}]})";
  auto write_v3 = [&](const std::string& name, const std::string& shape, const std::string& dtype,
                      const std::string& fill, const std::vector<uint8_t>& chunk) {
    write_text(dir / name / "zarr.json", kV3Group);
    write_text(dir / name / "s0" / "zarr.json", v3_array(shape, shape, dtype, R"([{"name": "bytes"}])", fill));
    if (!chunk.empty()) write_bytes(dir / name / "s0" / "c" / "0" / "0" / "0", chunk.data(), chunk.size());
  };
  write_v3("a.zarr", "[1, 2, 3]", "uint8", "0", {1, 2, 3, 4, 5, 6});
  write_v3("b.zarr", "[1, 2, 3]", "uint8", "0", {7, 8, 9, 10, 11, 12});               // same metadata as a
  write_v3("c.zarr", "[1, 3, 2]", "uint8", "0", {6, 5, 4, 3, 2, 1});                  // another shape
  write_v3("d.zarr", "[1, 2, 3]", "uint8", "9", {});                                  // another fill, no chunk
  write_v3("e.zarr", "[1, 2, 3]", "uint16", "0", as_bytes(std::vector<uint16_t>{1, 2, 3, 4, 5, 600}));
  write_text(dir / "f.zarr" / ".zattrs", v2_group);                                   // v2, level path "0"
  write_text(dir / "f.zarr" / "0" / ".zarray", R"({"zarr_format": 2, "shape": [1, 2, 3], "chunks": [1, 2, 3],
    "dtype": "|u1", "compressor": null, "fill_value": 0, "order": "C", "filters": null})");
  const std::vector<uint8_t> f_pixels = {9, 9, 8, 8, 7, 7};
  write_bytes(dir / "f.zarr" / "0" / "0.0.0", f_pixels.data(), f_pixels.size());
  const std::vector<std::pair<std::string, std::vector<uint8_t>>> expected = {
      {"a.zarr", {1, 2, 3, 4, 5, 6}},
      {"b.zarr", {7, 8, 9, 10, 11, 12}},
      {"c.zarr", {6, 5, 4, 3, 2, 1}},
      {"d.zarr", {9, 9, 9, 9, 9, 9}},
      {"e.zarr", as_bytes(std::vector<uint16_t>{1, 2, 3, 4, 5, 600})},
      {"f.zarr", f_pixels},
  };
  for (int round = 0; round < 2; ++round) {
    for (const auto& [name, pixels] : expected) {
      const std::string item = (dir / name).string();
      const ImageFileShape shape = probe_ome_zarr(item, 1 << 20);
      std::vector<uint8_t> out;
      read_ome_zarr(item, shape, out, 1 << 20);
      EXPECT_EQ(out, pixels) << name;
      EXPECT_EQ(shape.height, name == "c.zarr" ? 3 : 2) << name;
      EXPECT_EQ(shape.type, name == "e.zarr" ? PixelType::kUint16 : PixelType::kUint8) << name;
    }
  }
  // Metadata rewritten in place is parsed again: a bad one is refused, even right after a good read of the same path.
  write_text(dir / "b.zarr" / "s0" / "zarr.json",
             v3_array("[1, 2, 3]", "[1, 2, 3]", "uint8", R"([{"name": "bytes"}])", "300"));
  EXPECT_NE(zarr_error(dir / "b.zarr").find("fill_value 300"), std::string::npos) << zarr_error(dir / "b.zarr");
  EXPECT_EQ(zarr_error(dir / "a.zarr"), "no error");
  // A level that does not exist is refused although the metadata bytes equal the last image's.
  std::vector<uint8_t> out;
  EXPECT_THROW(probe_ome_zarr((dir / "a.zarr").string(), 1 << 20, 1), FileImageError);
  fs::remove_all(dir);
}

TEST(ZarrReader, AFifoChunkIsRefusedNotWaitedOn) {
  const fs::path dir = temp_dir("zarr_fifo");
  const fs::path item = dir / "img.zarr";
  write_text(item / "zarr.json", kV3Group);
  write_text(item / "s0" / "zarr.json", v3_array("[1, 2, 3]", "[1, 2, 3]", "uint8", R"([{"name": "bytes"}])"));
  fs::create_directories(item / "s0" / "c" / "0" / "0");
  ASSERT_EQ(::mkfifo((item / "s0" / "c" / "0" / "0" / "0").c_str(), 0600), 0);
  EXPECT_NE(zarr_error(item).find("s0/c/0/0/0: not a regular file"), std::string::npos) << zarr_error(item);
  fs::remove_all(dir);
}

TEST(ZarrReader, FloatFillValuesAsTheV3SpecWritesThem) {
  const fs::path dir = temp_dir("zarr_fill");
  const fs::path item = dir / "img.zarr";
  write_text(item / "zarr.json", kV3Group);
  auto filled = [&](const std::string& fill) {
    write_text(item / "s0" / "zarr.json",
               v3_array("[1, 2, 3]", "[1, 2, 2]", "float32", R"([{"name": "bytes"}])", fill));
    std::vector<uint8_t> out;
    read_ome_zarr(item.string(), probe_ome_zarr(item.string(), 1 << 20), out, 1 << 20);
    EXPECT_EQ(out.size(), 6u * 4);
    float first;
    std::memcpy(&first, out.data(), 4);
    return first;
  };
  EXPECT_EQ(filled("-2.5"), -2.5f);
  EXPECT_TRUE(std::isnan(filled(R"("NaN")")));
  EXPECT_EQ(filled(R"("Infinity")"), std::numeric_limits<float>::infinity());
  EXPECT_EQ(filled(R"("-Infinity")"), -std::numeric_limits<float>::infinity());
  EXPECT_EQ(filled(R"("0x3fc00000")"), 1.5f);
  // A fill value the type cannot hold is bad metadata, named as such.
  write_text(item / "s0" / "zarr.json", v3_array("[1, 2, 3]", "[1, 2, 2]", "uint8", R"([{"name": "bytes"}])", "300"));
  EXPECT_NE(zarr_error(item).find("s0: fill_value 300 is not a valid uint8 value"), std::string::npos)
      << zarr_error(item);
  write_text(item / "s0" / "zarr.json",
             v3_array("[1, 2, 3]", "[1, 2, 2]", "int16", R"([{"name": "bytes"}])", R"("NaN")"));
  EXPECT_NE(zarr_error(item).find("is not a valid int16 value"), std::string::npos) << zarr_error(item);
  fs::remove_all(dir);
}

TEST(ZarrReader, SignedTypesBothEndiannesses) {
  const fs::path dir = temp_dir("zarr_signed");
  const fs::path item = dir / "img.zarr";
  write_text(item / "zarr.json", kV3Group);
  // v3 int32, little-endian, two chunks.
  const std::vector<int32_t> wide = {-2147483647 - 1, -1, 0, 1, 70000, 2147483647, -70000, 5};
  write_text(item / "s0" / "zarr.json", v3_array("[1, 2, 4]", "[1, 1, 4]", "int32", R"([{"name": "bytes"}])"));
  write_bytes(item / "s0" / "c" / "0" / "0" / "0", wide.data(), 16);
  write_bytes(item / "s0" / "c" / "0" / "1" / "0", wide.data() + 4, 16);
  const ImageFileShape shape = probe_ome_zarr(item.string(), 1 << 20);
  EXPECT_EQ(shape, (ImageFileShape{PixelType::kInt32, 1, 1, 2, 4}));
  std::vector<uint8_t> out;
  read_ome_zarr(item.string(), shape, out, 1 << 20);
  EXPECT_EQ(out, as_bytes(wide));
  // v2 big-endian int16 with a negative fill value for its missing second chunk.
  fs::remove_all(item);
  write_text(item / ".zgroup", R"({"zarr_format": 2})");
  write_text(item / ".zattrs", R"({"multiscales": [{"axes": ["y", "x"], "datasets": [{"path": "0"}]}]})");
  write_text(item / "0" / ".zarray", R"({"zarr_format": 2, "shape": [2, 3], "chunks": [1, 3], "dtype": ">i2",
    "compressor": null, "filters": null, "order": "C", "fill_value": -300})");
  const uint8_t big[] = {0xFF, 0xFE, 0x00, 0x07, 0x80, 0x00};  // -2, 7, -32768
  write_bytes(item / "0" / "0.0", big, sizeof big);
  read_ome_zarr(item.string(), probe_ome_zarr(item.string(), 1 << 20), out, 1 << 20);
  EXPECT_EQ(out, as_bytes(std::vector<int16_t>{-2, 7, -32768, -300, -300, -300}));
  fs::remove_all(dir);
}

TEST(ZarrReader, V2NullFillValueMakesAMissingChunkAnError) {
  const fs::path dir = temp_dir("zarr_null_fill");
  const fs::path item = dir / "img.zarr";
  write_text(item / ".zgroup", R"({"zarr_format": 2})");
  write_text(item / ".zattrs", R"({"multiscales": [{"axes": ["c", "y", "x"], "datasets": [{"path": "0"}]}]})");
  write_text(item / "0" / ".zarray", R"({"zarr_format": 2, "shape": [1, 2, 2], "chunks": [1, 1, 2], "dtype": "|u1",
    "compressor": null, "filters": null, "order": "C", "fill_value": null, "dimension_separator": "/"})");
  const uint8_t row[] = {1, 2};
  write_bytes(item / "0" / "0" / "0" / "0", row, 2);
  const std::string message = zarr_error(item);
  EXPECT_NE(message.find("img.zarr/0/0/1/0: chunk file 0/0/1/0 is missing and the array defines no fill value"),
            std::string::npos)
      << message;
  fs::remove_all(dir);
}

TEST(ZarrReader, VolumeAxesTczyx) {
  const fs::path dir = temp_dir("zarr_volume");
  const fs::path item = dir / "img.zarr";
  write_text(item / "zarr.json", R"({"zarr_format": 3, "node_type": "group", "attributes": {"ome": {"version": "0.5",
    "multiscales": [{"axes": [{"name": "t"}, {"name": "c"}, {"name": "z"}, {"name": "y"}, {"name": "x"}],
    "datasets": [{"path": "s0"}]}]}}})");
  const std::string raw = R"([{"name": "bytes"}])";
  write_text(item / "s0" / "zarr.json", v3_array("[1, 2, 3, 4, 5]", "[1, 1, 2, 4, 5]", "uint8", raw));
  const std::vector<uint8_t> volume = ramp<uint8_t>(2 * 3 * 4 * 5, 8);  // (C, Z, H, W)
  for (int c = 0; c < 2; ++c) {
    for (int cz = 0; cz < 2; ++cz) {
      std::vector<uint8_t> chunk(2 * 20, 0);  // z 3 is past the edge of the second z chunk
      for (int z = cz * 2; z < std::min(3, cz * 2 + 2); ++z) {
        std::copy_n(volume.begin() + (c * 3 + z) * 20, 20, chunk.begin() + (z - cz * 2) * 20);
      }
      write_bytes(item / "s0" / "c" / "0" / std::to_string(c) / std::to_string(cz) / "0" / "0", chunk.data(),
                  chunk.size());
    }
  }
  const ImageFileShape shape = probe_ome_zarr(item.string(), 1 << 20);
  EXPECT_EQ(shape, (ImageFileShape{PixelType::kUint8, 2, 3, 4, 5}));
  std::vector<uint8_t> out;
  read_ome_zarr(item.string(), shape, out, 1 << 20);
  EXPECT_EQ(out, volume);

  // The dataset's image is (C, Z, H, W) and its samples come out so, converted.
  auto dataset = std::make_shared<FileImageDataset>(ImageFileFormat::kOmeZarr, std::vector<std::string>{item.string()});
  EXPECT_EQ(dataset->image().depth, 3);
  TransformOptions transform;
  transform.scale = false;
  FileImageRows rows(dataset, transform);
  EXPECT_EQ(rows.sample_shape(), (std::vector<int64_t>{2, 3, 4, 5}));
  std::vector<float> sample(volume.size());
  std::vector<uint8_t> scratch;
  rows.write_row(0, 0, reinterpret_cast<uint8_t*>(sample.data()), scratch);
  EXPECT_EQ(sample, std::vector<float>(volume.begin(), volume.end()));

  write_text(item / "s0" / "zarr.json", v3_array("[2, 2, 3, 4, 5]", "[1, 1, 2, 4, 5]", "uint8", raw));
  EXPECT_NE(zarr_error(item).find("axis 't' has size 2; time series are not supported"), std::string::npos);
  fs::remove_all(dir);
}

TEST(ZarrReader, RefusesWhatItCannotRead) {
  const fs::path dir = temp_dir("zarr_refuse");
  const fs::path item = dir / "img.zarr";
  write_text(item / "zarr.json", kV3Group);
  auto refused = [&](const std::string& codecs, const std::string& dtype, const std::string& expect) {
    write_text(item / "s0" / "zarr.json", v3_array("[1, 4, 4]", "[1, 4, 4]", dtype, codecs));
    try {
      probe_ome_zarr(item.string(), 1 << 20);
      ADD_FAILURE() << codecs << " was accepted";
    } catch (const FileImageError& e) {
      EXPECT_NE(std::string(e.what()).find(expect), std::string::npos) << e.what();
    }
  };
  refused(R"([{"name": "sharding_indexed"}])", "uint8", "sharding");
  refused(R"([{"name": "transpose"}, {"name": "bytes"}])", "uint8", "transpose");
  refused(R"([{"name": "bytes"}, {"name": "lzma"}])", "uint8", "'lzma' is not supported");
  refused(R"([{"name": "bytes"}])", "int64", "'int64' is not supported");
  fs::remove_all(dir);
}

TEST(ZarrReader, V2UncompressedYX) {
  const fs::path dir = temp_dir("zarr_v2");
  const fs::path item = dir / "img.zarr";
  write_text(item / ".zgroup", R"({"zarr_format": 2})");
  write_text(item / ".zattrs", R"({"multiscales": [{"axes": ["y", "x"], "datasets": [{"path": "0"}]}]})");
  write_text(item / "0" / ".zarray", R"({"zarr_format": 2, "shape": [4, 6], "chunks": [4, 6], "dtype": "<f4",
    "compressor": null, "filters": null, "order": "C", "fill_value": 0})");
  std::vector<float> image(24);
  std::iota(image.begin(), image.end(), 0.5f);
  write_bytes(item / "0" / "0.0", image.data(), image.size() * 4);
  const ImageFileShape shape = probe_ome_zarr(item.string(), 1 << 20);
  EXPECT_EQ(shape, (ImageFileShape{PixelType::kFloat32, 1, 1, 4, 6}));
  std::vector<uint8_t> out;
  read_ome_zarr(item.string(), shape, out, 1 << 20);
  EXPECT_EQ(std::memcmp(out.data(), image.data(), 96), 0);
  write_bytes(item / "0" / "0.0", image.data(), 50);
  EXPECT_THROW(read_ome_zarr(item.string(), shape, out, 1 << 20), FileImageError);
  fs::remove_all(dir);
}
#endif

}  // namespace
}  // namespace loaderbench
