// Hand-built Arrow arrays for tests: an owning tree of nodes exported through the C Data Interface with
// real release callbacks, so tests exercise the same ownership rules as pyarrow-produced data.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "loaderbench/arrow_c_abi.h"
#include "loaderbench/arrow_owners.h"

namespace loaderbench::testing {

struct Node {
  std::string format;
  std::string name;
  int64_t length = 0;
  int64_t null_count = 0;
  int64_t offset = 0;
  std::vector<std::optional<std::vector<uint8_t>>> buffers;  // nullopt = NULL buffer pointer
  std::vector<std::shared_ptr<Node>> children;
};
using NodePtr = std::shared_ptr<Node>;

template <typename T>
std::vector<uint8_t> to_bytes(const std::vector<T>& values) {
  std::vector<uint8_t> out(values.size() * sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

template <typename T>
NodePtr primitive(const std::string& format, const std::string& name, const std::vector<T>& values) {
  auto n = std::make_shared<Node>();
  n->format = format;
  n->name = name;
  n->length = static_cast<int64_t>(values.size());
  n->buffers = {std::nullopt, to_bytes(values)};
  return n;
}

inline NodePtr strings(const std::string& name, const std::vector<std::string>& values) {
  std::vector<int32_t> offsets{0};
  std::vector<uint8_t> data;
  for (const auto& v : values) {
    data.insert(data.end(), v.begin(), v.end());
    offsets.push_back(static_cast<int32_t>(data.size()));
  }
  auto n = std::make_shared<Node>();
  n->format = "u";
  n->name = name;
  n->length = static_cast<int64_t>(values.size());
  n->buffers = {std::nullopt, to_bytes(offsets), data};
  return n;
}

inline NodePtr list(const std::string& name, NodePtr child, const std::vector<int32_t>& offsets) {
  auto n = std::make_shared<Node>();
  n->format = "+l";
  n->name = name;
  n->length = static_cast<int64_t>(offsets.size()) - 1;
  n->buffers = {std::nullopt, to_bytes(offsets)};
  child->name = "item";
  n->children = {std::move(child)};
  return n;
}

inline NodePtr structure(const std::string& name, std::vector<NodePtr> children, int64_t length) {
  auto n = std::make_shared<Node>();
  n->format = "+s";
  n->name = name;
  n->length = length;
  n->buffers = {std::nullopt};
  n->children = std::move(children);
  return n;
}

/// Marks elements invalid (null) with a validity bitmap.
inline void set_nulls(Node& n, const std::vector<int64_t>& null_rows) {
  std::vector<uint8_t> bitmap(static_cast<size_t>((n.offset + n.length + 7) / 8), 0xFF);
  for (int64_t r : null_rows) {
    const int64_t bit = n.offset + r;
    bitmap[static_cast<size_t>(bit >> 3)] &= static_cast<uint8_t>(~(1u << (bit & 7)));
  }
  n.buffers[0] = bitmap;
  n.null_count = static_cast<int64_t>(null_rows.size());
}

inline NodePtr find(const NodePtr& n, const std::string& name) {
  for (const auto& c : n->children) {
    if (c->name == name) return c;
  }
  return nullptr;
}

namespace detail {
struct SchemaPrivate {
  NodePtr node;
  std::vector<ArrowSchema*> children;
};
struct ArrayPrivate {
  NodePtr node;
  std::vector<const void*> buffers;
  std::vector<ArrowArray*> children;
};

inline void release_schema(ArrowSchema* s) {
  auto* p = static_cast<SchemaPrivate*>(s->private_data);
  for (ArrowSchema* c : p->children) {
    if (c->release) c->release(c);
    delete c;
  }
  delete p;
  s->release = nullptr;
}

inline void release_array(ArrowArray* a) {
  auto* p = static_cast<ArrayPrivate*>(a->private_data);
  for (ArrowArray* c : p->children) {
    if (c->release) c->release(c);
    delete c;
  }
  delete p;
  a->release = nullptr;
}
}  // namespace detail

inline void export_schema(const NodePtr& node, ArrowSchema* out) {
  auto* p = new detail::SchemaPrivate{node, {}};
  for (const auto& child : node->children) {
    auto* c = new ArrowSchema;
    export_schema(child, c);
    p->children.push_back(c);
  }
  out->format = node->format.c_str();
  out->name = node->name.c_str();
  out->metadata = nullptr;
  out->flags = ARROW_FLAG_NULLABLE;
  out->n_children = static_cast<int64_t>(p->children.size());
  out->children = p->children.data();
  out->dictionary = nullptr;
  out->release = detail::release_schema;
  out->private_data = p;
}

inline void export_array(const NodePtr& node, ArrowArray* out) {
  auto* p = new detail::ArrayPrivate{node, {}, {}};
  for (const auto& b : node->buffers) p->buffers.push_back(b ? static_cast<const void*>(b->data()) : nullptr);
  for (const auto& child : node->children) {
    auto* c = new ArrowArray;
    export_array(child, c);
    p->children.push_back(c);
  }
  out->length = node->length;
  out->null_count = node->null_count;
  out->offset = node->offset;
  out->n_buffers = static_cast<int64_t>(p->buffers.size());
  out->n_children = static_cast<int64_t>(p->children.size());
  out->buffers = p->buffers.data();
  out->children = p->children.data();
  out->dictionary = nullptr;
  out->release = detail::release_array;
  out->private_data = p;
}

/// One synthetic OME image: its declared shape and which layouts carry its pixels.
struct TestImage {
  int32_t c = 1, z = 1, y = 4, x = 5;
  bool planes = true;
  bool chunks = true;
  std::string type = "uint16";  // pixels_meta.type (the payload is uint16 whatever it says, as ome-arrow stores)
  int value_modulo = 65536;     // pixel values wrap at this (256: uint8-range values)
};

/// A record batch like ome-arrow writes: row_id + ome_image{pixels_meta, planes, chunks} with uint16 pixels.
inline NodePtr ome_batch(const std::vector<TestImage>& images) {
  std::vector<int32_t> sx, sy, sz, st, pz, pt, cz, ct, cy, cx, shz, shy, shx;
  std::vector<int16_t> sc, pc, cc;
  std::vector<std::string> types;
  std::vector<int64_t> row_ids;
  std::vector<int32_t> plane_offsets{0}, chunk_offsets{0}, plane_pixel_offsets{0}, chunk_pixel_offsets{0};
  std::vector<uint16_t> plane_pixels, chunk_pixels;
  for (size_t i = 0; i < images.size(); ++i) {
    const TestImage& im = images[i];
    row_ids.push_back(static_cast<int64_t>(i));
    sx.push_back(im.x); sy.push_back(im.y); sz.push_back(im.z); sc.push_back(static_cast<int16_t>(im.c)); st.push_back(1);
    types.push_back(im.type);
    for (int32_t c = 0; c < im.c; ++c) {
      for (int32_t z = 0; z < im.z; ++z) {
        std::vector<uint16_t> px(static_cast<size_t>(im.y * im.x));
        for (size_t k = 0; k < px.size(); ++k) px[k] = static_cast<uint16_t>((i * 1000 + c * 100 + z * 10 + k) % im.value_modulo);
        if (im.planes) {
          pz.push_back(z); pt.push_back(0); pc.push_back(static_cast<int16_t>(c));
          plane_pixels.insert(plane_pixels.end(), px.begin(), px.end());
          plane_pixel_offsets.push_back(static_cast<int32_t>(plane_pixels.size()));
        }
        if (im.chunks) {
          ct.push_back(0); cc.push_back(static_cast<int16_t>(c)); cz.push_back(z); cy.push_back(0); cx.push_back(0);
          shz.push_back(1); shy.push_back(im.y); shx.push_back(im.x);
          chunk_pixels.insert(chunk_pixels.end(), px.begin(), px.end());
          chunk_pixel_offsets.push_back(static_cast<int32_t>(chunk_pixels.size()));
        }
      }
    }
    plane_offsets.push_back(static_cast<int32_t>(pz.size()));
    chunk_offsets.push_back(static_cast<int32_t>(cz.size()));
  }
  const auto n = static_cast<int64_t>(images.size());
  NodePtr meta = structure("pixels_meta",
                           {primitive("i", "size_x", sx), primitive("i", "size_y", sy), primitive("i", "size_z", sz),
                            primitive("s", "size_c", sc), primitive("i", "size_t", st), strings("type", types)},
                           n);
  NodePtr plane = structure("item",
                            {primitive("i", "z", pz), primitive("i", "t", pt), primitive("s", "c", pc),
                             list("pixels", primitive("S", "item", plane_pixels), plane_pixel_offsets)},
                            static_cast<int64_t>(pz.size()));
  NodePtr chunk = structure("item",
                            {primitive("i", "t", ct), primitive("s", "c", cc), primitive("i", "z", cz),
                             primitive("i", "y", cy), primitive("i", "x", cx), primitive("i", "shape_z", shz),
                             primitive("i", "shape_y", shy), primitive("i", "shape_x", shx),
                             list("pixels", primitive("S", "item", chunk_pixels), chunk_pixel_offsets)},
                            static_cast<int64_t>(cz.size()));
  NodePtr image = structure("ome_image", {meta, list("planes", plane, plane_offsets), list("chunks", chunk, chunk_offsets)}, n);
  return structure("", {primitive("l", "row_id", row_ids), image}, n);
}

// A stream over pre-built batches, optionally failing at a given call.
struct FakeStream {
  std::vector<NodePtr> batches;
  size_t next = 0;
  int fail_at = -1;
  std::string error = "disk on fire";

  static FakeStream* self(ArrowArrayStream* s) { return static_cast<FakeStream*>(s->private_data); }
  static int get_schema(ArrowArrayStream* s, ArrowSchema* out) {
    export_schema(self(s)->batches.at(0), out);
    return 0;
  }
  static int get_next(ArrowArrayStream* s, ArrowArray* out) {
    FakeStream* f = self(s);
    if (static_cast<int>(f->next) == f->fail_at) return 5;  // EIO
    if (f->next == f->batches.size()) {
      out->release = nullptr;
      return 0;
    }
    export_array(f->batches[f->next++], out);
    return 0;
  }
  static const char* last_error(ArrowArrayStream* s) { return self(s)->error.c_str(); }
  static void release(ArrowArrayStream* s) {
    delete self(s);
    s->release = nullptr;
  }
  static StreamOwner make(std::vector<NodePtr> batches, int fail_at = -1) {
    auto* f = new FakeStream{std::move(batches), 0, fail_at};
    ArrowArrayStream raw{get_schema, get_next, last_error, release, f};
    return StreamOwner(&raw);
  }
};

}  // namespace loaderbench::testing
