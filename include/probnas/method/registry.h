#pragma once
// The method registry (DESIGN, "A method is a folder plus one registry line"): each method lives in
// src/method/<name>/ and describes itself by one MethodEntry: its name and title, the spaces it
// searches, its own options, how it is built, and what it adds to the report. The engine, the CLI's
// option table, --help and the report reach methods only through this list; none of them names a
// method. registry.cpp lists the entries: adding a method adds one line there.
#include <any>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "probnas/core/config.h"
#include "probnas/core/option_binding.h"
#include "probnas/method/method.h"
#include "probnas/method/method_options.h"
#include "probnas/report/method_sections.h"

namespace probnas {

struct MethodEntry {
  std::string name;                 // the search.method value ("drnas")
  std::string title;                // for people ("DrNAS")
  std::string summary;              // one line for probnas --help
  std::vector<std::string> spaces;  // the search.space values it searches
  // Whether its methods have a phase after the search (SearchMethod::has_after_search), which
  // probnas sample reruns; known before a method is built, so sample refuses early.
  bool has_phase_after_search = false;
  // Config keys whose values tell this method's variants apart (probnas compare groups and labels runs
  // by them; GibbsNAS: gibbs.order and gibbs.arch_lr_schedule).
  std::vector<std::string> variant_keys;
  // For a variant key added after runs were made: the value of a run folder whose config.ini lacks
  // it (GibbsNAS: gibbs.arch_lr_schedule = constant). A key absent from both is left out of the label.
  std::map<std::string, std::string> variant_absent;
  // Declares the method's own [section] of options (may declare none).
  std::function<void(OptionTable&)> declare_options;
  // Its own options from a config (std::any holding the method's options struct; empty: none).
  std::function<std::any(const Config&)> read_options;
  // Builds the method; throws naming the keys when options do not go together.
  std::function<std::unique_ptr<SearchMethod>(const MethodBuild&)> make;
  // Checks its own options when another method (`selected`) runs (unset: none). DARTS refuses
  // darts.order = 2 there, which would otherwise be ignored silently.
  std::function<void(const std::any& own, const std::string& selected)> check_unselected;
  // What it adds to report.html (title only, by default).
  MethodSections report;
};

// An entry whose own options are the struct `Options` that `binding` declares (a static binding,
// which the entry refers to): name, title, summary, spaces, options and the report's title filled;
// the caller adds `make` and any other hook.
template <class Options>
MethodEntry method_entry(std::string name, std::string title, std::string summary, std::vector<std::string> spaces,
                         const OptionBinding<Options>& binding) {
  MethodEntry e;
  e.name = std::move(name);
  e.title = std::move(title);
  e.summary = std::move(summary);
  e.spaces = std::move(spaces);
  e.declare_options = [&binding](OptionTable& t) { binding.declare(t); };
  e.read_options = [&binding](const Config& c) { return std::any(binding.read(c)); };
  e.report.title = e.title;
  return e;
}

// Every built-in method, in the order --help lists them.
const std::vector<MethodEntry>& method_registry();
// The entry of search.method = `name`; throws naming the allowed values.
const MethodEntry& find_method(const std::string& name);
// The entry of `name`, or nullptr (a run folder of an unknown method).
const MethodEntry* method_entry_or_null(const std::string& name);
std::vector<std::string> method_names();
// Fails naming both keys when `method` does not search `space`.
void check_method_and_space(const std::string& method, const std::string& space);

}  // namespace probnas
