#pragma once
// Typed options (DESIGN, "Typed options per layer"): a layer declares its options once, each bound
// to a member of the layer's options struct, and the same declaration both adds the options to a
// command's OptionTable and fills the struct from a Config. A key is spelled in one place only, so
// code below `app` never looks a value up by its string and a mistyped key cannot exist.
//
//   struct CheckpointOptions { int64_t keep = 3; ... };
//   const OptionBinding<CheckpointOptions>& checkpoint_options() {
//     static const auto b = OptionBinding<CheckpointOptions>()
//         .integer("ckpt.keep", &CheckpointOptions::keep, 3, 1, 1000000, "newest files kept").resumable();
//     return b;
//   }
//   checkpoint_options().declare(table);                      // app: builds the command's table
//   const CheckpointOptions o = checkpoint_options().read(c);  // app: the one place that reads
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "probnas/core/config.h"

namespace probnas {

template <class T>
class OptionBinding {
 public:
  // Each declaration takes where the value goes: a data member pointer (`&T::keep`) or a setter
  // `void(T&, V)` that converts (a comma list into a vector, a value into a nested struct).
  template <class Target>
  OptionBinding& integer(std::string key, Target target, int64_t def, int64_t lo, int64_t hi, std::string help) {
    return add(std::move(key), [=](OptionTable& t, const std::string& k) { t.integer(k, def, lo, hi, help); },
               setter<int64_t>(target), [](const Config& c, const std::string& k) { return c.integer(k); });
  }
  template <class Target>
  OptionBinding& real(std::string key, Target target, double def, double lo, double hi, std::string help) {
    return add(std::move(key), [=](OptionTable& t, const std::string& k) { t.real(k, def, lo, hi, help); },
               setter<double>(target), [](const Config& c, const std::string& k) { return c.real(k); });
  }
  template <class Target>
  OptionBinding& boolean(std::string key, Target target, bool def, std::string help) {
    return add(std::move(key), [=](OptionTable& t, const std::string& k) { t.boolean(k, def, help); },
               setter<bool>(target), [](const Config& c, const std::string& k) { return c.boolean(k); });
  }
  template <class Target>
  OptionBinding& text(std::string key, Target target, std::string def, std::string help) {
    return add(std::move(key), [=](OptionTable& t, const std::string& k) { t.text(k, def, help); },
               setter<std::string>(target), [](const Config& c, const std::string& k) { return c.text(k); });
  }
  template <class Target>
  OptionBinding& choice(std::string key, Target target, std::string def, std::vector<std::string> choices,
                        std::string help) {
    return add(std::move(key),
               [=](OptionTable& t, const std::string& k) { t.choice(k, def, choices, help); },
               setter<std::string>(target), [](const Config& c, const std::string& k) { return c.text(k); });
  }
  // The option declared last may differ between a checkpoint and the run that resumes from it.
  OptionBinding& resumable() {
    fields_.back().resumable = true;
    return *this;
  }
  // Sets `flag` to whether the option declared last was given (in a file or on the command line)
  // rather than left at its default.
  OptionBinding& given(bool T::*flag) {
    auto& f = fields_.back();
    auto read = f.read;
    const std::string key = f.key;
    f.read = [read, key, flag](T& t, const Config& c) {
      read(t, c);
      t.*flag = !c.is_default(key);
    };
    return *this;
  }
  // Another binding's options, for a struct member of type U (a shared sub-struct).
  template <class U>
  OptionBinding& nest(U T::*member, const OptionBinding<U>& inner) {
    for (const auto& f : inner.fields()) {
      Field g{f.key, f.declare, nullptr, f.resumable};
      const auto read = f.read;
      g.read = [member, read](T& t, const Config& c) { read(t.*member, c); };
      fields_.push_back(std::move(g));
    }
    return *this;
  }

  // Adds every option to `table`, in declaration order.
  void declare(OptionTable& table) const {
    for (const auto& f : fields_) {
      f.declare(table, f.key);
      if (f.resumable) table.mark_resumable(f.key);
    }
  }
  // Fills `out` from `config` (whose table holds these options).
  void read(const Config& config, T& out) const {
    for (const auto& f : fields_) f.read(out, config);
  }
  T read(const Config& config) const {
    T out{};
    read(config, out);
    return out;
  }
  std::vector<std::string> keys() const {
    std::vector<std::string> k;
    for (const auto& f : fields_) k.push_back(f.key);
    return k;
  }

  struct Field {
    std::string key;
    std::function<void(OptionTable&, const std::string&)> declare;
    std::function<void(T&, const Config&)> read;
    bool resumable = false;
  };
  const std::vector<Field>& fields() const { return fields_; }

 private:
  template <class V, class Target>
  static std::function<void(T&, const V&)> setter(Target target) {
    if constexpr (std::is_member_object_pointer_v<Target>) {
      return [target](T& t, const V& v) {
        using Member = std::remove_reference_t<decltype(t.*target)>;
        t.*target = static_cast<Member>(v);
      };
    } else {
      return [target](T& t, const V& v) { target(t, v); };
    }
  }
  template <class V, class Get>
  OptionBinding& add(std::string key, std::function<void(OptionTable&, const std::string&)> declare,
                     std::function<void(T&, const V&)> set, Get get) {
    Field f;
    f.key = key;
    f.declare = std::move(declare);
    f.read = [set = std::move(set), get, key](T& t, const Config& c) { set(t, get(c, key)); };
    fields_.push_back(std::move(f));
    return *this;
  }

  std::vector<Field> fields_;
};

}  // namespace probnas
