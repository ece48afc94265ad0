#include "io/safetensors.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/mapped_file.h"

namespace tfm::io {

namespace {

// ordered_json keeps the header's key order, which breaks ties between tensors at the same offset.
using Json = nlohmann::ordered_json;

constexpr size_t kLengthBytes = 8;
// The reference implementation refuses headers above 100 MB; so do we.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr const char* kMetadataKey = "__metadata__";

// The mapped file, at least long enough for the header length.
MappedFile map_safetensors(const std::string& path) {
  MappedFile m = map_file(path);
  if (m.size == 0) fail("file is empty; a safetensors file starts with an 8-byte header length");
  if (m.size < kLengthBytes) fail("file is {} bytes, shorter than the 8-byte header length", m.size);
  return m;
}

uint64_t load_le_u64(const char* p) {
  uint64_t v = 0;
  for (size_t i = 0; i < kLengthBytes; ++i) v |= uint64_t(uint8_t(p[i])) << (8 * i);
  return v;
}

void store_le_u64(char* p, uint64_t v) {
  for (size_t i = 0; i < kLengthBytes; ++i) p[i] = char(uint8_t(v >> (8 * i)));
}

// The header length, checked against the file size.
size_t header_length(const MappedFile& m) {
  uint64_t n = load_le_u64(m.data);
  size_t room = m.size - kLengthBytes;
  if (n > room)
    fail(
        "header length {} runs past the end of the file ({} bytes after the length): truncated or not a "
        "safetensors file?",
        n, room);
  if (n > kMaxHeaderBytes) fail("header length {} is absurd (limit {} bytes)", n, kMaxHeaderBytes);
  return size_t(n);
}

Json parse_json(const char* text, size_t size) {
  Json j;
  try {
    j = Json::parse(text, text + size);
  } catch (const Json::parse_error& e) {
    fail("header is not valid JSON: {}", e.what());
  }
  if (!j.is_object()) fail("header is not a JSON object but {}", j.type_name());
  return j;
}

std::optional<DType> parse_dtype(const std::string& s) {
  static const std::pair<const char*, DType> kNames[] = {
      {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16},
      {"F64", DType::F64}, {"I64", DType::I64}, {"I32", DType::I32},
      {"U8", DType::U8},   {"BOOL", DType::U8}, {"I8", DType::I8}};
  for (const auto& [name, dtype] : kNames)
    if (s == name) return dtype;
  return std::nullopt;
}

const Json& field(const Json& entry, const char* key) {
  auto it = entry.find(key);
  if (it == entry.end()) fail("entry {} has no '{}'", entry.dump(), key);
  return *it;
}

DType entry_dtype(const Json& entry) {
  const Json& j = field(entry, "dtype");
  if (!j.is_string()) fail("dtype {} is not a string", j.dump());
  auto dtype = parse_dtype(j.get<std::string>());
  if (!dtype) fail("unknown dtype {} (supported: F32, F16, BF16, F64, I64, I32, U8, BOOL)", j.dump());
  return *dtype;
}

Shape entry_shape(const Json& entry) {
  const Json& j = field(entry, "shape");
  if (!j.is_array()) fail("shape {} is not an array", j.dump());
  if (j.size() > size_t(kMaxDims)) fail("shape {} has more than {} dimensions", j.dump(), kMaxDims);
  Shape shape;
  for (const Json& d : j) {
    if (!d.is_number_unsigned() || d.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
      fail("shape {} has a dimension that is not a non-negative 64-bit integer", j.dump());
    shape.push_back(d.get<int64_t>());
  }
  return shape;
}

// Bytes that `shape` of `dtype` needs; fails on overflow.
size_t byte_count(const Shape& shape, DType dtype) {
  uint64_t n = dtype_size(dtype);
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, uint64_t(d), &n))
      fail("shape {} is too large: its size overflows", shape.str());
  return size_t(n);
}

TensorInfo parse_entry(const std::string& name, const Json& entry, size_t data_size) {
  if (!entry.is_object()) fail("entry {} is not an object", entry.dump());
  TensorInfo ti;
  ti.name = name;
  ti.dtype = entry_dtype(entry);
  ti.shape = entry_shape(entry);
  const Json& off = field(entry, "data_offsets");
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
    fail("data_offsets {} is not a pair of non-negative integers", off.dump());
  ti.begin = off[0].get<size_t>();
  ti.end = off[1].get<size_t>();
  if (ti.end < ti.begin) fail("data_offsets [{}, {}) end before they begin", ti.begin, ti.end);
  if (ti.end > data_size)
    fail("offsets [{}, {}) past the end of the data section of {} bytes: file truncated?", ti.begin, ti.end,
         data_size);
  size_t want = byte_count(ti.shape, ti.dtype);
  if (ti.end - ti.begin != want)
    fail("data_offsets [{}, {}) hold {} bytes, but {} x {} needs {}", ti.begin, ti.end, ti.end - ti.begin,
         dtype_name(ti.dtype), ti.shape.str(), want);
  return ti;
}

std::map<std::string, std::string> parse_metadata(const Json& j) {
  if (!j.is_object()) fail("{} is not an object but {}", kMetadataKey, j.type_name());
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : j.items()) {
    if (!value.is_string()) fail("{} '{}' is {}, not a string", kMetadataKey, key, value.dump());
    out[key] = value.get<std::string>();
  }
  return out;
}

// Sorts by data offset (stable, so ties keep header order) and rejects overlapping byte ranges.
void sort_and_check_overlap(std::vector<TensorInfo>& infos) {
  std::stable_sort(infos.begin(), infos.end(),
                   [](const TensorInfo& a, const TensorInfo& b) { return a.begin < b.begin; });
  const TensorInfo* last = nullptr;  // the non-empty tensor reaching furthest so far
  for (const TensorInfo& ti : infos) {
    if (ti.begin == ti.end) continue;
    if (last && ti.begin < last->end)
      fail("tensors '{}' [{}, {}) and '{}' [{}, {}) overlap", last->name, last->begin, last->end, ti.name,
           ti.begin, ti.end);
    last = &ti;
  }
}

bool is_float(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::F64; }

// A persistent `dtype` copy of a mapped view, which may be misaligned for its dtype: element-wise
// conversion dereferences typed pointers, so misaligned bytes are first memcpy'd to aligned memory.
Tensor persistent_copy(const Tensor& view, DType dtype) {
  bool aligned = reinterpret_cast<uintptr_t>(view.raw()) % dtype_size(view.dtype()) == 0;
  if (aligned || view.nbytes() == 0) return view.to(dtype, /*persistent=*/true);
  Tensor copy = Tensor::empty_persistent(view.shape(), view.dtype());
  std::memcpy(copy.raw(), view.raw(), view.nbytes());
  return dtype == view.dtype() ? copy : copy.to(dtype, /*persistent=*/true);
}

Json shape_json(const Shape& shape) { return Json(std::vector<int64_t>(shape.begin(), shape.end())); }

// The JSON header, padded with spaces to a multiple of 8 bytes so that the data section is 8-aligned.
std::string build_header(const std::vector<std::pair<std::string, Tensor>>& tensors,
                         const std::map<std::string, std::string>& metadata) {
  Json header = Json::object();
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  std::set<std::string> seen;
  size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name == kMetadataKey) fail("'{}' is reserved and cannot name a tensor", kMetadataKey);
    if (!seen.insert(name).second) fail("tensor '{}' given twice", name);
    if (!t.defined()) fail("tensor '{}' is undefined", name);
    Json entry = Json::object();
    entry["dtype"] = dtype_name(t.dtype());
    entry["shape"] = shape_json(t.shape());
    entry["data_offsets"] = Json::array({offset, offset + t.nbytes()});
    header[name] = std::move(entry);
    offset += t.nbytes();
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const Json::exception& e) {  // e.g. a name that is not valid UTF-8
    fail("cannot encode the header: {}", e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

}  // namespace

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  return with_context(path, [&] {
    SafetensorsFile f;
    f.path_ = path;
    MappedFile m = map_safetensors(path);
    size_t header_size = header_length(m);
    Json header = parse_json(m.data + kLengthBytes, header_size);
    f.map_ = std::move(m.memory);
    f.data_ = m.data + kLengthBytes + header_size;
    size_t data_size = m.size - kLengthBytes - header_size;

    std::vector<TensorInfo> infos;
    for (const auto& item : header.items()) {
      // Named references, not a structured binding: clang before 16 cannot capture bindings in lambdas.
      const std::string& name = item.key();
      const Json& entry = item.value();
      if (name == kMetadataKey) {
        f.metadata_ = parse_metadata(entry);
        continue;
      }
      infos.push_back(with_context(fmt::format("tensor '{}'", name),
                                   [&] { return parse_entry(name, entry, data_size); }));
    }
    sort_and_check_overlap(infos);
    for (TensorInfo& ti : infos) {
      f.names_.push_back(ti.name);
      f.index_.emplace(ti.name, std::move(ti));
    }
    return f;
  });
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) fail("{}: no tensor '{}' in this file", path_, name);
  return it->second;
}

Tensor SafetensorsFile::view(const std::string& name) const {
  const TensorInfo& ti = info(name);
  // The mapping is read-only: writing through the view faults.
  return Tensor::wrap(map_, const_cast<char*>(data_ + ti.begin), ti.shape, ti.dtype);
}

Tensor SafetensorsFile::get_f32(const std::string& name) const {
  const TensorInfo& ti = info(name);
  if (!is_float(ti.dtype))
    fail("{}: tensor '{}' has dtype {}; get_f32 reads floating-point tensors only (use get_i64)", path_, name,
         dtype_name(ti.dtype));
  return persistent_copy(view(name), DType::F32);
}

Tensor SafetensorsFile::get_i64(const std::string& name) const {
  const TensorInfo& ti = info(name);
  if (is_float(ti.dtype))
    fail("{}: tensor '{}' has dtype {}; get_i64 reads integer tensors only (use get_f32)", path_, name,
         dtype_name(ti.dtype));
  return persistent_copy(view(name), DType::I64);
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::string header = with_context(path, [&] { return build_header(tensors, metadata); });
  char length[kLengthBytes];
  store_le_u64(length, header.size());
  AtomicFileWriter out(path);
  out.write(length, sizeof length);
  out.write(header);
  for (const auto& [name, t] : tensors) {
    if (t.numel() == 0) continue;
    Tensor c = t.contiguous();
    out.write(c.raw(), c.nbytes());
  }
  out.commit();
}

}  // namespace tfm::io
