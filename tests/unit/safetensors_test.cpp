#include "io/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"
#include "test_support.h"

namespace tfm::io {
namespace {

using test::error_of;

namespace fs = std::filesystem;

std::string seed_fixture(const std::string& name) {
  return test::fixtures_root() + "/seed_transformer/" + name;
}

Tensor iota(const Shape& s, DType dtype) {
  Tensor t = Tensor::empty(s);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = float(i) - 3;
  return t.to(dtype);
}

std::string le_u64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = char(uint8_t(v >> (8 * i)));
  return s;
}

// Writes a file by hand: the 8-byte header length, `header`, then `data_bytes` zero bytes.
std::string craft(const std::string& path, const std::string& header, size_t data_bytes) {
  std::ofstream f(path, std::ios::binary);
  f << le_u64(header.size()) << header << std::string(data_bytes, '\0');
  return path;
}

void expect_contains(const std::string& msg, const std::vector<std::string>& parts) {
  for (const std::string& p : parts)
    EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

TEST(Safetensors, RoundTripDtypesAndMetadata) {
  std::string path = test::temp_dir("st") + "/rt.safetensors";
  Tensor f32 = iota({2, 3}, DType::F32);
  Tensor f16 = iota({4}, DType::F16);
  Tensor bf16 = iota({3, 2}, DType::BF16);
  Tensor i64 = Tensor::empty({3}, DType::I64);
  i64.data<int64_t>()[0] = -7;
  i64.data<int64_t>()[1] = int64_t(1) << 40;
  i64.data<int64_t>()[2] = INT64_MAX;
  std::map<std::string, std::string> meta = {{"format", "pt"}, {"step", "12"}};
  save_safetensors(path, {{"w", f32}, {"h", f16}, {"b", bf16}, {"ids", i64}}, meta);

  SafetensorsFile f = SafetensorsFile::open(path);
  EXPECT_EQ(f.names(), (std::vector<std::string>{"w", "h", "b", "ids"}));
  EXPECT_EQ(f.metadata(), meta);
  EXPECT_EQ(f.info("h").dtype, DType::F16);
  EXPECT_EQ(f.info("b").shape, Shape({3, 2}));
  EXPECT_TRUE(same_bytes(f.view("w"), f32));
  EXPECT_TRUE(same_bytes(f.view("h"), f16));
  EXPECT_TRUE(same_bytes(f.view("b"), bf16));
  EXPECT_TRUE(same_bytes(f.view("ids"), i64));
  EXPECT_TRUE(test::expect_close("h", f.get_f32("h"), iota({4}, DType::F32), 0));
  EXPECT_TRUE(test::expect_close("b", f.get_f32("b"), iota({3, 2}, DType::F32), 0));
  EXPECT_TRUE(same_bytes(f.get_i64("ids"), i64));

  // Length, header padded to a multiple of 8, then exactly the tensor bytes.
  std::string bytes = read_file(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + f32.nbytes() + f16.nbytes() + bf16.nbytes() + i64.nbytes());
}

TEST(Safetensors, CopiesOutliveTheFileAndViewsKeepTheMapping) {
  std::string path = test::temp_dir("st") + "/life.safetensors";
  Tensor a = iota({5}, DType::F32);
  save_safetensors(path, {{"a", a}});
  Tensor view, copy;
  {
    SafetensorsFile f = SafetensorsFile::open(path);
    view = f.view("a");
    copy = f.get_f32("a");
  }
  EXPECT_TRUE(same_bytes(view, a));
  EXPECT_TRUE(same_bytes(copy, a));
  EXPECT_NE(copy.raw(), view.raw());
}

TEST(Safetensors, NonContiguousInputIsWrittenContiguous) {
  std::string path = test::temp_dir("st") + "/t.safetensors";
  Tensor a = iota({3, 4}, DType::F32);
  Tensor t = a.transpose(0, 1).narrow(0, 1, 2);  // [2, 3], strided
  ASSERT_FALSE(t.is_contiguous());
  save_safetensors(path, {{"t", t}});
  Tensor v = SafetensorsFile::open(path).view("t");
  ASSERT_EQ(v.shape(), Shape({2, 3}));
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) EXPECT_EQ(v.at({i, j}), a.at({j, i + 1}));
}

TEST(Safetensors, MisalignedTensorsConvertCorrectly) {
  std::string path = test::temp_dir("st") + "/mis.safetensors";
  Tensor u8 = Tensor::zeros({3}, DType::U8);
  Tensor f32 = iota({5}, DType::F32);
  Tensor f64 = iota({2}, DType::F64);
  save_safetensors(path, {{"u8", u8}, {"f32", f32}, {"f64", f64}});
  SafetensorsFile f = SafetensorsFile::open(path);
  ASSERT_NE(reinterpret_cast<uintptr_t>(f.view("f32").raw()) % 4, 0u) << "test needs a misaligned tensor";
  EXPECT_TRUE(test::expect_close("f32", f.get_f32("f32"), f32, 0));
  EXPECT_TRUE(test::expect_close("f64", f.get_f32("f64"), iota({2}, DType::F32), 0));
  EXPECT_EQ(f.get_i64("u8").shape(), Shape({3}));
}

TEST(Safetensors, EmptyTensorsAndNoMetadata) {
  std::string path = test::temp_dir("st") + "/e.safetensors";
  save_safetensors(path, {{"empty", Tensor::empty({0, 4})}, {"x", iota({2}, DType::F32)}});
  SafetensorsFile f = SafetensorsFile::open(path);
  EXPECT_EQ(f.names(), (std::vector<std::string>{"empty", "x"}));
  EXPECT_TRUE(f.metadata().empty());
  EXPECT_EQ(f.get_f32("empty").shape(), Shape({0, 4}));
}

TEST(Safetensors, ReadsSeedFixture) {
  std::string path = seed_fixture("model.safetensors");
  SafetensorsFile f = SafetensorsFile::open(path);
  const TensorInfo& proj = f.info("projection_layer.weight");
  EXPECT_EQ(proj.dtype, DType::F32);
  EXPECT_EQ(proj.shape, Shape({280, 64}));
  for (size_t i = 1; i < f.names().size(); ++i)
    EXPECT_LE(f.info(f.names()[i - 1]).end, f.info(f.names()[i]).begin);
  std::string msg = error_of([&] { f.info("no.such.tensor"); });
  expect_contains(msg, {path, "'no.such.tensor'"});
}

TEST(Safetensors, IntegerTensorsNeedGetI64) {
  std::string path = seed_fixture("reference.safetensors");
  SafetensorsFile f = SafetensorsFile::open(path);
  std::string msg = error_of([&] { f.get_f32("src"); });
  expect_contains(msg, {path, "'src'", "I64", "get_i64"});
  Tensor src = f.get_i64("src");
  EXPECT_EQ(src.dtype(), DType::I64);
  EXPECT_EQ(src.shape(), Shape({2, 12}));
  msg = error_of([&] { f.get_i64("encoder_output"); });
  expect_contains(msg, {path, "'encoder_output'", "F32"});
}

// Parses the fixture independently (nlohmann + memcpy) and compares every tensor's bytes.
TEST(Safetensors, AgreesWithIndependentParse) {
  std::string path = seed_fixture("model.safetensors");
  std::string bytes = read_file(path);
  ASSERT_GE(bytes.size(), 8u);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(uint8_t(bytes[i])) << (8 * i);
  nlohmann::json header = nlohmann::json::parse(bytes.substr(8, n));
  const char* data = bytes.data() + 8 + n;

  SafetensorsFile f = SafetensorsFile::open(path);
  size_t count = 0;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    ++count;
    size_t begin = entry["data_offsets"][0], end = entry["data_offsets"][1];
    Tensor v = f.view(name);
    ASSERT_EQ(v.nbytes(), end - begin) << name;
    EXPECT_EQ(std::memcmp(v.raw(), data + begin, end - begin), 0) << name;
    EXPECT_EQ(std::string(dtype_name(v.dtype())), entry["dtype"].get<std::string>()) << name;
  }
  EXPECT_EQ(f.names().size(), count);

  const TensorInfo& proj = f.info("projection_layer.weight");
  std::vector<float> want(280 * 64);
  std::memcpy(want.data(), data + proj.begin, want.size() * 4);
  Tensor got = f.get_f32("projection_layer.weight");
  for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(got.f32()[i], want[i]) << i;
}

TEST(Safetensors, TruncatedFile) {
  std::string bytes = read_file(seed_fixture("model.safetensors"));
  std::string path = test::temp_dir("st") + "/half.safetensors";
  write_file_atomic(path, bytes.substr(0, bytes.size() / 2));
  std::string msg = error_of([&] { SafetensorsFile::open(path); });
  expect_contains(msg, {path, "tensor '", "past the end of the data section", "file truncated?"});
}

TEST(Safetensors, EmptyAndShortFiles) {
  std::string dir = test::temp_dir("st");
  std::string empty = dir + "/empty";
  std::ofstream{empty};
  expect_contains(error_of([&] { SafetensorsFile::open(empty); }), {empty, "empty"});
  std::string shorter = dir + "/short";
  write_file_atomic(shorter, "abcde");
  expect_contains(error_of([&] { SafetensorsFile::open(shorter); }), {shorter, "5 bytes", "shorter than"});
  std::string missing = dir + "/missing";
  expect_contains(error_of([&] { SafetensorsFile::open(missing); }), {missing, "No such file"});
}

TEST(Safetensors, HeaderLengthPastEnd) {
  std::string path = test::temp_dir("st") + "/len.safetensors";
  write_file_atomic(path, le_u64(1000) + "{}");
  expect_contains(error_of([&] { SafetensorsFile::open(path); }),
                  {path, "header length 1000", "past the end"});
}

TEST(Safetensors, AbsurdHeaderLength) {
  std::string path = test::temp_dir("st") + "/huge.safetensors";
  uint64_t n = 200'000'000;
  write_file_atomic(path, le_u64(n));
  fs::resize_file(path, 8 + n);  // sparse: takes no disk space
  expect_contains(error_of([&] { SafetensorsFile::open(path); }),
                  {path, "header length 200000000", "absurd"});
}

TEST(Safetensors, RejectsBadHeaders) {
  struct Case {
    std::string header;
    size_t data_bytes;
    std::vector<std::string> expect;
  };
  const std::vector<Case> cases = {
      {"{not json", 0, {"not valid JSON", "parse error"}},
      {"[1, 2]", 0, {"not a JSON object", "array"}},
      {R"({"a": 5})", 0, {"tensor 'a'", "not an object"}},
      {R"({"a": {"dtype": "F32", "shape": [1]}})", 4, {"tensor 'a'", "no 'data_offsets'"}},
      {R"({"a": {"shape": [1], "data_offsets": [0, 4]}})", 4, {"tensor 'a'", "no 'dtype'"}},
      {R"({"w": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}})",
       1,
       {"tensor 'w'", "unknown dtype \"F8_E4M3\""}},
      {R"({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 0]}})",
       0,
       {"tensor 'w'", "non-negative"}},
      {R"({"w": {"dtype": "F32", "shape": [4611686018427387904, 8], "data_offsets": [0, 0]}})",
       0,
       {"tensor 'w'", "overflows"}},
      {R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}})", 8, {"tensor 'w'", "end before"}},
      {R"({"w": {"dtype": "F32", "shape": [16], "data_offsets": [0, 64]}})",
       16,
       {"tensor 'w'", "offsets [0, 64) past the end of the data section of 16 bytes: file truncated?"}},
      {R"({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}})",
       16,
       {"tensor 'w'", "hold 12 bytes", "F32 x [2, 2] needs 16"}},
      {R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
           "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}})",
       24,
       {"'a' [0, 16)", "'b' [8, 24)", "overlap"}},
      {R"({"__metadata__": {"k": 1}})", 0, {"__metadata__ 'k'", "not a string"}},
      {R"({"__metadata__": ["k"]})", 0, {"__metadata__ is not an object"}},
  };
  std::string dir = test::temp_dir("st");
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].header);
    std::string path = craft(dir + "/bad" + std::to_string(i), cases[i].header, cases[i].data_bytes);
    std::string msg = error_of([&] { SafetensorsFile::open(path); });
    expect_contains(msg, cases[i].expect);
    EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;  // the path comes first
  }
}

TEST(Safetensors, AcceptsBoolAsU8) {
  std::string path = craft(test::temp_dir("st") + "/bool",
                           R"({"m": {"dtype": "BOOL", "shape": [2, 3], "data_offsets": [0, 6]}})", 6);
  SafetensorsFile f = SafetensorsFile::open(path);
  EXPECT_EQ(f.info("m").dtype, DType::U8);
  EXPECT_EQ(f.get_i64("m").shape(), Shape({2, 3}));
}

TEST(Safetensors, WriterRejectsBadInputAndKeepsPreviousFile) {
  std::string dir = test::temp_dir("st");
  std::string path = dir + "/w.safetensors";
  Tensor a = iota({2}, DType::F32);
  save_safetensors(path, {{"a", a}});
  std::string before = read_file(path);
  expect_contains(error_of([&] { save_safetensors(path, {{"x", a}, {"x", a}}); }), {path, "'x' given twice"});
  expect_contains(error_of([&] { save_safetensors(path, {{"u", Tensor()}}); }), {path, "'u' is undefined"});
  expect_contains(error_of([&] { save_safetensors(path, {{"__metadata__", a}}); }), {path, "reserved"});
  EXPECT_EQ(read_file(path), before);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
}

}  // namespace
}  // namespace tfm::io
