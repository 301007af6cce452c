#pragma once
// The state of anything that changes during a run, as a tree of named tensors and attributes.
// Methods, optimisers and the loader serialise themselves into a State (DESIGN principle 4);
// the HDF5 layer maps the tree onto groups, datasets and attributes one to one, so the names
// chosen here are the names users see in h5dump.
#include <torch/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace probnas::ckpt {

using Attribute = std::variant<int64_t, double, std::string>;

class State {
 public:
  State& group(const std::string& name);  // created on first use
  const State& group(const std::string& name) const;  // throws naming the missing group
  bool has_group(const std::string& name) const { return groups_.count(name) != 0; }

  void put(const std::string& name, const torch::Tensor& tensor);  // stored detached, on CPU, cloned
  torch::Tensor get(const std::string& name) const;                 // throws naming the missing entry
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  bool has_attr(const std::string& name) const { return attrs_.count(name) != 0; }

  // Text datasets: one string (a scalar dataset in HDF5) or a list of lines (a 1-D dataset).
  void put_text(const std::string& name, std::string text);
  void put_lines(const std::string& name, std::vector<std::string> lines);
  std::string text(const std::string& name) const;               // throws naming the missing entry
  std::vector<std::string> lines(const std::string& name) const;  // a scalar text is one line
  bool has_text(const std::string& name) const { return texts_.count(name) != 0; }

  void set_attr(const std::string& name, Attribute value) { attrs_[name] = std::move(value); }
  int64_t attr_int(const std::string& name) const;
  double attr_real(const std::string& name) const;
  std::string attr_text(const std::string& name) const;

  const std::map<std::string, State>& groups() const { return groups_; }
  const std::map<std::string, torch::Tensor>& tensors() const { return tensors_; }
  const std::map<std::string, Attribute>& attrs() const { return attrs_; }
  struct Text {
    std::vector<std::string> lines;
    bool scalar = false;  // one string rather than a list
  };
  const std::map<std::string, Text>& texts() const { return texts_; }
  // Path for messages: "/method/arch" (set as groups are created).
  const std::string& path() const { return path_; }

 private:
  std::string path_ = "";
  std::map<std::string, State> groups_;
  std::map<std::string, torch::Tensor> tensors_;
  std::map<std::string, Attribute> attrs_;
  std::map<std::string, Text> texts_;
};

}  // namespace probnas::ckpt
