#include "probnas/method/registry.h"

#include <algorithm>

#include "probnas/core/error.h"

// The built-in methods, in the order --help lists them: one line each. A method's folder
// src/method/<name>/ defines MethodEntry <name>_method_entry() (docs/developing.md).
#define PROBNAS_METHODS(X) \
  X(darts)                 \
  X(drnas)                 \
  X(gdas)                  \
  X(gibbsnas)              \
  X(parsec)                \
  X(random)                \
  X(pgnas)

namespace probnas {

#define PROBNAS_DECLARE_METHOD(name) MethodEntry name##_method_entry();
PROBNAS_METHODS(PROBNAS_DECLARE_METHOD)
#undef PROBNAS_DECLARE_METHOD

const std::vector<MethodEntry>& method_registry() {
#define PROBNAS_LIST_METHOD(name) name##_method_entry(),
  static const std::vector<MethodEntry> entries = {PROBNAS_METHODS(PROBNAS_LIST_METHOD)};
#undef PROBNAS_LIST_METHOD
  return entries;
}

std::vector<std::string> method_names() {
  std::vector<std::string> names;
  for (const auto& e : method_registry()) names.push_back(e.name);
  return names;
}

const MethodEntry* method_entry_or_null(const std::string& name) {
  for (const auto& e : method_registry())
    if (e.name == name) return &e;
  return nullptr;
}

const MethodEntry& find_method(const std::string& name) {
  if (const MethodEntry* e = method_entry_or_null(name)) return *e;
  std::string allowed;
  for (const auto& n : method_names()) allowed += (allowed.empty() ? "" : ", ") + n;
  PROBNAS_FAIL("search.method = '", name, "' is not built in this version (allowed: ", allowed, ")");
}

void check_method_and_space(const std::string& method, const std::string& space) {
  const MethodEntry& entry = find_method(method);
  if (std::find(entry.spaces.begin(), entry.spaces.end(), space) != entry.spaces.end()) return;
  std::string spaces, searchers;
  for (const auto& s : entry.spaces) spaces += (spaces.empty() ? "" : " and ") + s;
  std::vector<std::string> others;
  for (const auto& e : method_registry())
    if (std::find(e.spaces.begin(), e.spaces.end(), space) != e.spaces.end()) others.push_back(e.name);
  std::string hint;
  if (others.size() == 1)
    hint = "; the " + space + " space is searched by " + others.front() + " only: use search.method = " +
           others.front() + " with search.space = " + space;
  else if (entry.spaces.size() == 1)
    hint = ": use search.method = " + method + " with search.space = " + entry.spaces.front();
  PROBNAS_FAIL("search.method = ", method, " with search.space = ", space, ": ", entry.title, " searches the ", spaces,
               " space", entry.spaces.size() > 1 ? "s" : "", hint);
}

}  // namespace probnas
