// The fuzz bytes as a stream of decisions, read front to back. Every decision has a plain answer that byte 0 (or
// the end of the input) selects, so an input of zeros builds a valid record batch and a mutated byte perturbs one
// thing in it: a structure-aware fuzzer whose corpus stays near the happy path, where the interesting checks are.
// The same class records the bytes of chosen decisions, which is how the seed generator writes valid inputs
// without knowing the byte layout (it runs the same builders).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <vector>

namespace loaderbench::fuzz {

class FuzzInput {
 public:
  /// Replays `size` fuzz bytes.
  FuzzInput(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  /// Records into `out` the bytes that make every decision its plain answer, except the structural choices named
  /// in `forced` (label -> answer) and blobs, which record the payload they are given.
  FuzzInput(std::vector<uint8_t>* out, std::map<std::string, uint32_t> forced)
      : record_(out), forced_(std::move(forced)) {}

  /// One of `n` valid alternatives (0 = the plain one). Not a perturbation: every answer builds valid Arrow.
  uint32_t choose(uint32_t n, const char* label) {
    if (n <= 1) return 0;
    if (record_ != nullptr) {
      const auto it = forced_.find(label);
      const uint32_t answer = it == forced_.end() ? 0 : it->second % n;
      emit(static_cast<uint8_t>(answer));
      return answer;
    }
    return byte() % n;
  }

  /// Mostly 0; 1..n for one of n rarer (usually invalid) variants, 1 in 8 for random bytes.
  uint32_t rare(uint32_t n) {
    const uint8_t b = record_ != nullptr ? (emit(0), uint8_t{0}) : byte();
    return b < 224 ? 0 : 1 + (b - 224u) % n;
  }

  /// An integer that should be `correct`: 7 in 8 random bytes keep it, the others give its neighbours, zero,
  /// negatives and the edges of every integer width (the values that overflow careless arithmetic).
  int64_t integer(int64_t correct) {
    const uint32_t variant = rare(32);
    if (variant == 0) return correct;
    const int64_t value = edge_value(variant - 1, correct);
    if (value != correct) values_perturbed_ = true;
    return value;
  }

  /// A payload that should be `correct`: by default `correct` itself; else up to `max` bytes taken from the
  /// input (a 2-byte length, then the bytes). Recording writes `correct` as bytes taken from the input, so that
  /// seeds carry real zstd/lz4 frames for the fuzzer to mutate.
  std::vector<uint8_t> blob(const std::vector<uint8_t>& correct, size_t max) {
    if (record_ != nullptr) {
      emit(1);
      const size_t n = std::min(correct.size(), max);
      emit(static_cast<uint8_t>(n & 0xFF));
      emit(static_cast<uint8_t>(n >> 8));
      record_->insert(record_->end(), correct.begin(), correct.begin() + static_cast<std::ptrdiff_t>(n));
      return std::vector<uint8_t>(correct.begin(), correct.begin() + static_cast<std::ptrdiff_t>(n));
    }
    if (byte() == 0) return correct;
    size_t n = byte();
    n |= size_t{byte()} << 8;
    n = std::min<size_t>({n, max, size_ - pos_});
    std::vector<uint8_t> out(data_ + pos_, data_ + pos_ + n);
    pos_ += n;
    if (out != correct) values_perturbed_ = true;
    return out;
  }

  /// A raw little-endian value of `n` bytes (values the builder does not derive, e.g. COO entries); recording
  /// writes (and returns) `recorded`, so that seeds can carry chosen values.
  uint64_t raw(int n, uint64_t recorded = 0) {
    if (record_ != nullptr) {
      for (int k = 0; k < n; ++k) emit(static_cast<uint8_t>(recorded >> (8 * k)));
      return n >= 8 ? recorded : recorded & ((uint64_t{1} << (8 * n)) - 1);
    }
    uint64_t v = 0;
    for (int k = 0; k < n; ++k) v |= uint64_t{byte()} << (8 * k);
    return v;
  }
  bool recording() const { return record_ != nullptr; }

  /// Marks that the built Arrow is no longer the plain valid one (a changed length, offset, validity, type).
  void perturb_structure() { structure_perturbed_ = true; }
  void perturb_values() { values_perturbed_ = true; }
  bool structure_perturbed() const { return structure_perturbed_; }
  bool values_perturbed() const { return values_perturbed_; }
  /// Neither: the input must be accepted and read back exactly.
  bool pristine() const { return !structure_perturbed_ && !values_perturbed_; }

  /// The value for edge variant `k` (0-based, < 32) of an integer that should be `correct`.
  int64_t edge_value(uint32_t k, int64_t correct) {
    constexpr int64_t kMax = std::numeric_limits<int64_t>::max(), kMin = std::numeric_limits<int64_t>::min();
    switch (k) {
      case 0: return correct == kMax ? kMin : correct + 1;
      case 1: return correct == kMin ? kMax : correct - 1;
      case 2: return 0;
      case 3: return -1;
      case 4: return correct == kMin ? kMin : -correct;
      case 5: return static_cast<int64_t>(static_cast<uint64_t>(correct) * 2);
      case 6: return static_cast<int64_t>(static_cast<uint64_t>(correct) + byte_or_zero());
      case 7: return static_cast<int64_t>(static_cast<uint64_t>(correct) - byte_or_zero());
      case 8: return byte_or_zero();
      case 9: return std::numeric_limits<int8_t>::max();
      case 10: return std::numeric_limits<int8_t>::min();
      case 11: return std::numeric_limits<uint8_t>::max();
      case 12: return std::numeric_limits<int16_t>::max();
      case 13: return std::numeric_limits<uint16_t>::max();
      case 14: return std::numeric_limits<int32_t>::max();
      case 15: return std::numeric_limits<int32_t>::min();
      case 16: return std::numeric_limits<uint32_t>::max();
      case 17: return int64_t{1} << 31;
      case 18: return int64_t{1} << 32;
      case 19: return (int64_t{1} << 32) + 1;
      case 20: return kMax;
      case 21: return kMin;
      case 22: return kMax - 1;
      case 23: return int64_t{1} << 62;
      case 24: return kMax - byte_or_zero();
      case 25: return kMin + byte_or_zero();
      case 26: return static_cast<int64_t>(raw(8));
      case 27: return static_cast<int32_t>(raw(4));
      case 28: return (int64_t{1} << 31) - 1 - byte_or_zero();
      case 29: return static_cast<int64_t>(static_cast<uint64_t>(correct) << 32);
      case 30: return kMax / 2 + 1;
      default: return -static_cast<int64_t>(byte_or_zero()) - 2;
    }
  }

 private:
  uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  int64_t byte_or_zero() { return record_ != nullptr ? (emit(0), 0) : byte(); }
  void emit(uint8_t b) { record_->push_back(b); }

  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t pos_ = 0;
  std::vector<uint8_t>* record_ = nullptr;
  std::map<std::string, uint32_t> forced_;
  bool structure_perturbed_ = false;
  bool values_perturbed_ = false;
};

}  // namespace loaderbench::fuzz
