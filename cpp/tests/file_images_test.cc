// The TIFF and OME-Zarr readers against files written here (libtiff for TIFF, hand-made chunks for Zarr).
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>
#include <string>
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

template <typename T>
std::vector<T> ramp(size_t n, int seed) {
  std::vector<T> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<T>((i * 7 + seed * 13) % 250);
  return v;
}

#ifdef LOADERBENCH_WITH_TIFF
struct TiffLayout {
  bool tiled = false;
  bool interleaved = false;  // one page, samples as channels, contiguous
  uint16_t compression = COMPRESSION_NONE;
};

/// Writes (C, H, W) `pixels` of T: C pages, or one page of C samples.
template <typename T>
void write_tiff(const fs::path& path, const std::vector<T>& pixels, int c, int h, int w, TiffLayout layout) {
  TIFF* tif = TIFFOpen(path.c_str(), "w");
  ASSERT_NE(tif, nullptr);
  const uint16_t format = std::is_floating_point_v<T> ? SAMPLEFORMAT_IEEEFP : SAMPLEFORMAT_UINT;
  const int pages = layout.interleaved ? 1 : c;
  const int samples = layout.interleaved ? c : 1;
  for (int p = 0; p < pages; ++p) {
    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, w);
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, h);
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, static_cast<int>(8 * sizeof(T)));
    TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, format);
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, samples);
    TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(tif, TIFFTAG_COMPRESSION, layout.compression);
    std::vector<T> plane(static_cast<size_t>(h) * w * samples);
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        for (int s = 0; s < samples; ++s) {
          plane[(static_cast<size_t>(y) * w + x) * samples + s] = pixels[((p + s) * h + y) * w + x];
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
  EXPECT_EQ(shape, (ImageFileShape{type, c, h, w}));
  std::vector<uint8_t> out;
  read_tiff((dir / "a.tif").string(), shape, out);
  ASSERT_EQ(out.size(), pixels.size() * sizeof(T));
  EXPECT_EQ(std::memcmp(out.data(), pixels.data(), out.size()), 0);
  fs::remove_all(dir);
}

TEST(TiffReader, StripsPagesAsChannels) { expect_reads_back<uint16_t>({}, 3, PixelType::kUint16); }
TEST(TiffReader, TiledDeflateFloat) {
  expect_reads_back<float>({.tiled = true, .compression = COMPRESSION_ADOBE_DEFLATE}, 2, PixelType::kFloat32);
}
TEST(TiffReader, InterleavedLzwUint8) {
  expect_reads_back<uint8_t>({.interleaved = true, .compression = COMPRESSION_LZW}, 3, PixelType::kUint8);
}
TEST(TiffReader, SinglePage) { expect_reads_back<uint8_t>({}, 1, PixelType::kUint8); }

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
  EXPECT_NE(message(dir / "small.tif").find("the image is 2x8x16 uint16"), std::string::npos);
  const auto size = fs::file_size(dir / "good.tif");
  fs::copy_file(dir / "good.tif", dir / "cut.tif");
  fs::resize_file(dir / "cut.tif", size / 3);
  const std::string cut = message(dir / "cut.tif");
  EXPECT_NE(cut.find("cut.tif"), std::string::npos) << cut;
  EXPECT_EQ(cut.find("no error"), std::string::npos);
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
                     const std::string& codecs) {
  return R"({"zarr_format": 3, "node_type": "array", "shape": )" + shape + R"(, "data_type": ")" + dtype +
         R"(", "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": )" + chunks +
         R"(}}, "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}}, "fill_value": 0,
         "codecs": )" + codecs + "}";
}

TEST(ZarrReader, V3EdgeChunksBigEndianGzip) {
  const fs::path dir = temp_dir("zarr");
  const fs::path item = dir / "img.zarr";
  write_text(item / "zarr.json", kV3Group);
  write_text(item / "s0" / "zarr.json",
             v3_array("[2, 5, 7]", "[1, 3, 4]", "uint16",
                      R"([{"name": "bytes", "configuration": {"endian": "big"}}, {"name": "gzip"}])"));
  const std::vector<uint16_t> image = ramp<uint16_t>(2 * 5 * 7, 3);
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
  EXPECT_EQ(shape, (ImageFileShape{PixelType::kUint16, 2, 5, 7}));
  std::vector<uint8_t> out;
  read_ome_zarr(item.string(), shape, out, 1 << 20);
  ASSERT_EQ(out.size(), image.size() * 2);
  EXPECT_EQ(std::memcmp(out.data(), image.data(), out.size()), 0);

  fs::remove(item / "s0" / "c" / "1" / "1" / "0");
  try {
    read_ome_zarr(item.string(), shape, out, 1 << 20);
    ADD_FAILURE() << "a missing chunk was read";
  } catch (const FileImageError& e) {
    EXPECT_NE(std::string(e.what()).find("chunk file s0/c/1/1/0 is missing"), std::string::npos) << e.what();
  }
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
  refused(R"([{"name": "bytes"}])", "int32", "'int32' is not supported");
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
  EXPECT_EQ(shape, (ImageFileShape{PixelType::kFloat32, 1, 4, 6}));
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
