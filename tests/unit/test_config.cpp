// Unit tests of the option table / Config (core/config.h) and the search option table (app/options.h).
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "probnas/app/options.h"
#include "probnas/core/config.h"
#include "probnas/core/error.h"
#include "test_support.h"

namespace probnas {
namespace {

using test::TempDir;
using test::write_file;


std::string section_of(const std::string& key) { return key.substr(0, key.find('.')); }
std::string name_of(const std::string& key) { return key.substr(key.find('.') + 1); }

std::string ini_for(const std::string& key, const std::string& value) {
  return "[" + section_of(key) + "]\n" + name_of(key) + " = " + value + "\n";
}

std::string real_text(double v) {
  std::ostringstream out;
  out << std::setprecision(17) << v;
  return out.str();
}

// A valid value of `spec` that differs from its default whenever the spec allows another value.
std::string non_default_value(const OptionSpec& spec) {
  switch (spec.kind) {
    case OptionKind::integer: {
      const auto lo = static_cast<int64_t>(spec.lo), hi = static_cast<int64_t>(spec.hi);
      const int64_t def = std::stoll(spec.default_value);
      for (int64_t candidate : {lo + (hi - lo) / 2, lo + (hi - lo) / 3, hi, lo})
        if (candidate != def) return std::to_string(candidate);
      return std::to_string(def);
    }
    case OptionKind::real: {
      const double def = std::stod(spec.default_value);
      for (double candidate : {spec.lo + (spec.hi - spec.lo) / 2, spec.lo + (spec.hi - spec.lo) / 3, spec.hi, spec.lo})
        if (candidate != def) return real_text(candidate);
      return spec.default_value;
    }
    case OptionKind::boolean: return spec.default_value == "true" ? "false" : "true";
    case OptionKind::choice:
      for (const auto& c : spec.choices)
        if (c != spec.default_value) return c;
      return spec.default_value;
    case OptionKind::text: return "custom-" + name_of(spec.key) + "/value_1";
  }
  return "";
}

bool allows_another_value(const OptionSpec& spec) {
  return spec.kind != OptionKind::choice || spec.choices.size() > 1;
}

// Checks that the typed getter of `spec.key` in `config` returns `value` (the text it was set from).
void expect_value(const Config& config, const OptionSpec& spec, const std::string& value, const std::string& how) {
  SCOPED_TRACE(how + ": " + spec.key + " = " + value);
  switch (spec.kind) {
    case OptionKind::integer: EXPECT_EQ(config.integer(spec.key), std::stoll(value)); break;
    case OptionKind::real: EXPECT_DOUBLE_EQ(config.real(spec.key), std::stod(value)); break;
    case OptionKind::boolean: EXPECT_EQ(config.boolean(spec.key), value == "true"); break;
    case OptionKind::choice:
    case OptionKind::text: EXPECT_EQ(config.text(spec.key), value); break;
  }
  EXPECT_FALSE(config.is_default(spec.key));
  if (allows_another_value(spec)) {
    EXPECT_NE(value, spec.default_value) << "test picked the default for " << spec.key;
  }
}

// Every option other than `key` must still be at its default.
void expect_others_default(const Config& config, const std::string& key) {
  for (const auto& other : config.table().specs()) {
    if (other.key == key) continue;
    EXPECT_TRUE(config.is_default(other.key)) << other.key << " changed while setting " << key;
  }
}

TEST(ConfigTable, SearchTableHasWellFormedSpecs) {
  const OptionTable& table = search_option_table();
  ASSERT_GE(table.specs().size(), 30u);
  for (const auto& spec : table.specs()) {
    SCOPED_TRACE(spec.key);
    ASSERT_NE(spec.key.find('.'), std::string::npos);
    EXPECT_FALSE(section_of(spec.key).empty());
    EXPECT_FALSE(name_of(spec.key).empty());
    EXPECT_FALSE(spec.help.empty());
    EXPECT_EQ(table.find(spec.key), &spec);
    // The default itself must be accepted by the table's own validation.
    Config config(table);
    EXPECT_EQ(test::error_of([&] { config.set(spec.key, spec.default_value); }), "<no error>");
    if (spec.kind == OptionKind::integer || spec.kind == OptionKind::real) {
      EXPECT_LE(spec.lo, spec.hi);
      EXPECT_GE(std::stod(spec.default_value), spec.lo);
      EXPECT_LE(std::stod(spec.default_value), spec.hi);
    }
  }
  EXPECT_EQ(table.find("search.bogus"), nullptr);
  ASSERT_NE(table.find("search.method"), nullptr);
  EXPECT_EQ(table.find("search.method")->kind, OptionKind::choice);
}

TEST(ConfigDefaults, FreshConfigHoldsTheDefaults) {
  Config config(search_option_table());
  EXPECT_EQ(config.text("search.method"), "drnas");
  EXPECT_EQ(config.integer("search.epochs"), 100);
  EXPECT_DOUBLE_EQ(config.real("search.lr"), 0.025);
  EXPECT_DOUBLE_EQ(config.real("data.train_portion"), 0.5);
  EXPECT_TRUE(config.boolean("data.normalize"));
  EXPECT_EQ(config.text("run.dir"), "");
  EXPECT_EQ(config.text("data.dataset"), "fashion-mnist");
  for (const auto& spec : search_option_table().specs()) EXPECT_TRUE(config.is_default(spec.key)) << spec.key;
}

TEST(ConfigValues, RealsAreStoredInTheirShortestExactForm) {
  // One value, however it is typed, is one canonical text: hashes and resume checks compare text.
  Config a(search_option_table()), b(search_option_table()), c(search_option_table());
  a.set("search.lr", "0.0250");
  b.set("search.lr", "2.5e-2");
  EXPECT_EQ(a.values().at("search.lr"), "0.025");
  EXPECT_EQ(b.values().at("search.lr"), "0.025");
  EXPECT_EQ(a.hash(), c.hash());  // 0.025 is the default
  a.set("search.arch_lr", "0.00030000000000000003");  // not 3e-4: the next double up
  EXPECT_NE(a.values().at("search.arch_lr"), "0.0003");
  EXPECT_EQ(std::stod(a.values().at("search.arch_lr")), 0.00030000000000000003);
  EXPECT_EQ(parse_ini_values(c.to_ini()), c.values());  // the INI text reads back to the same values
}

TEST(ConfigFile, EveryOptionParsesFromAnIniFile) {
  const OptionTable& table = search_option_table();
  TempDir dir;
  int index = 0;
  for (const auto& spec : table.specs()) {
    const std::string value = non_default_value(spec);
    const std::string path = dir.file("option" + std::to_string(index++) + ".ini");
    write_file(path, ini_for(spec.key, value));
    Config config(table);
    const std::string error = test::error_of([&] { read_config_file(config, path); });
    ASSERT_EQ(error, "<no error>") << spec.key << " = " << value;
    expect_value(config, spec, value, "INI file");
    expect_others_default(config, spec.key);
  }
}

TEST(ConfigCommandLine, EveryOptionParsesFromTheCommandLine) {
  const OptionTable& table = search_option_table();
  for (const auto& spec : table.specs()) {
    const std::string value = non_default_value(spec);
    Config config(table);
    CommandLine cl;
    const std::string error = test::error_of([&] { cl = parse_command_line(config, {"--" + spec.key, value}); });
    ASSERT_EQ(error, "<no error>") << "--" << spec.key << " " << value;
    EXPECT_FALSE(cl.help);
    EXPECT_EQ(cl.config_file, "");
    expect_value(config, spec, value, "command line");
    expect_others_default(config, spec.key);
  }
}

TEST(ConfigCommandLine, EqualsSyntaxWorks) {
  Config config(search_option_table());
  parse_command_line(config, {"--search.epochs=7", "--search.method=darts"});
  EXPECT_EQ(config.integer("search.epochs"), 7);
  EXPECT_EQ(config.text("search.method"), "darts");
}

TEST(ConfigCommandLine, CanonicalisesIntegersAndBooleans) {
  Config config(search_option_table());
  parse_command_line(config, {"--data.flip", "no", "--data.crop", "1", "--search.epochs", "0012"});
  EXPECT_FALSE(config.boolean("data.flip"));
  EXPECT_TRUE(config.boolean("data.crop"));
  EXPECT_EQ(config.integer("search.epochs"), 12);
}

TEST(ConfigCommandLine, CommandLineWinsOverConfigFile) {
  TempDir dir;
  const std::string path = dir.file("base.ini");
  write_file(path,
             "# a comment\n[search]\nepochs = 7\nlr = 0.125\nmethod = darts\n\n[data]\ntrain_portion = 0.25\n");
  for (bool options_first : {false, true}) {
    SCOPED_TRACE(options_first ? "options before --config" : "options after --config");
    Config config(search_option_table());
    std::vector<std::string> args = {"--config", path, "--search.epochs", "9", "--data.train_portion", "0.75"};
    if (options_first) args = {"--search.epochs", "9", "--data.train_portion", "0.75", "--config", path};
    const CommandLine cl = parse_command_line(config, args);
    EXPECT_FALSE(cl.help);
    EXPECT_EQ(cl.config_file, path);
    EXPECT_EQ(config.integer("search.epochs"), 9);           // both: command line wins
    EXPECT_DOUBLE_EQ(config.real("data.train_portion"), 0.75);  // both: command line wins
    EXPECT_DOUBLE_EQ(config.real("search.lr"), 0.125);        // file only
    EXPECT_EQ(config.text("search.method"), "darts");          // file only
    EXPECT_TRUE(config.is_default("search.batch_size"));      // neither
    EXPECT_EQ(config.integer("search.batch_size"), 64);
  }
}

TEST(ConfigCommandLine, MissingConfigFileIsAnErrorNamingIt) {
  TempDir dir;
  const std::string path = dir.file("does-not-exist.ini");
  Config config(search_option_table());
  const std::string error = test::error_of([&] { parse_command_line(config, {"--config", path}); });
  EXPECT_NE(error.find(path), std::string::npos) << error;
  EXPECT_NE(error.find("cannot be opened"), std::string::npos) << error;
}

TEST(ConfigFile, UnknownKeyFailsNamingKeyAndFile) {
  TempDir dir;
  const std::string path = dir.file("unknown.ini");
  write_file(path, "[search]\nepochs = 5\nbogus = 1\n");
  Config config(search_option_table());
  const std::string error = test::error_of([&] { read_config_file(config, path); });
  EXPECT_NE(error.find("search.bogus"), std::string::npos) << error;
  EXPECT_NE(error.find(path), std::string::npos) << error;
  EXPECT_NE(error.find("unknown option"), std::string::npos) << error;
}

TEST(ConfigFile, UnknownSectionFailsNamingKey) {
  TempDir dir;
  const std::string path = dir.file("section.ini");
  write_file(path, "[nosuchsection]\nepochs = 5\n");
  Config config(search_option_table());
  const std::string error = test::error_of([&] { read_config_file(config, path); });
  EXPECT_NE(error.find("nosuchsection.epochs"), std::string::npos) << error;
  EXPECT_NE(error.find(path), std::string::npos) << error;
}

TEST(ConfigCommandLine, UnknownKeyFailsNamingKey) {
  Config config(search_option_table());
  const std::string error = test::error_of([&] { parse_command_line(config, {"--search.bogus", "1"}); });
  EXPECT_NE(error.find("search.bogus"), std::string::npos) << error;
  EXPECT_NE(error.find("command line"), std::string::npos) << error;
  EXPECT_NE(error.find("unknown option"), std::string::npos) << error;
}

TEST(ConfigCommandLine, PrefixOfAKeyIsNotGuessed) {
  Config config(search_option_table());
  const std::string error = test::error_of([&] { parse_command_line(config, {"--search.epo", "5"}); });
  EXPECT_NE(error.find("search.epo"), std::string::npos) << error;
  EXPECT_EQ(config.integer("search.epochs"), 100);
}

struct BadValue {
  std::string key, value, allowed;
};

const std::vector<BadValue>& bad_values() {
  static const std::vector<BadValue> values = {
      {"search.epochs", "0", "integer in [1, 1000000]"},
      {"search.epochs", "1000001", "integer in [1, 1000000]"},
      {"search.epochs", "12x", "integer in [1, 1000000]"},
      {"data.train_portion", "1.5", "number in [0.01, 0.99]"},
      {"data.train_portion", "0.001", "number in [0.01, 0.99]"},
      {"search.lr", "abc", "number in [0, 10]"},
      {"search.lr", "nan", "number in [0, 10]"},
      {"search.method", "foo", "one of: darts, drnas"},
      {"data.normalize", "maybe", "true or false"},
  };
  return values;
}

TEST(ConfigFile, InvalidValuesFailNamingKeyValueAndAllowed) {
  TempDir dir;
  int index = 0;
  for (const auto& bad : bad_values()) {
    SCOPED_TRACE(bad.key + " = " + bad.value);
    const std::string path = dir.file("bad" + std::to_string(index++) + ".ini");
    write_file(path, ini_for(bad.key, bad.value));
    const OptionSpec* spec = search_option_table().find(bad.key);
    ASSERT_NE(spec, nullptr);
    Config config(search_option_table());
    const std::string error = test::error_of([&] { read_config_file(config, path); });
    EXPECT_NE(error.find(bad.key), std::string::npos) << error;
    EXPECT_NE(error.find("'" + bad.value + "'"), std::string::npos) << error;
    EXPECT_NE(error.find("allowed"), std::string::npos) << error;
    EXPECT_NE(error.find(bad.allowed), std::string::npos) << error;
    EXPECT_NE(error.find(path), std::string::npos) << error;
    // The rejected value is not stored.
    EXPECT_TRUE(config.is_default(bad.key));
    EXPECT_EQ(config.hash(), Config(search_option_table()).hash());
  }
}

TEST(ConfigCommandLine, InvalidValuesFailNamingKeyValueAndAllowed) {
  for (const auto& bad : bad_values()) {
    SCOPED_TRACE(bad.key + " = " + bad.value);
    Config config(search_option_table());
    const std::string error = test::error_of([&] { parse_command_line(config, {"--" + bad.key, bad.value}); });
    EXPECT_NE(error.find(bad.key), std::string::npos) << error;
    EXPECT_NE(error.find("'" + bad.value + "'"), std::string::npos) << error;
    EXPECT_NE(error.find("allowed"), std::string::npos) << error;
    EXPECT_NE(error.find(bad.allowed), std::string::npos) << error;
    EXPECT_NE(error.find("command line"), std::string::npos) << error;
    EXPECT_TRUE(config.is_default(bad.key));
  }
}

TEST(ConfigSet, RangeBoundsAreInclusive) {
  Config config(search_option_table());
  config.set("search.epochs", "1");
  EXPECT_EQ(config.integer("search.epochs"), 1);
  config.set("search.epochs", "1000000");
  EXPECT_EQ(config.integer("search.epochs"), 1000000);
  config.set("data.train_portion", "0.99");
  EXPECT_DOUBLE_EQ(config.real("data.train_portion"), 0.99);
  config.set("data.train_portion", "0.01");
  EXPECT_DOUBLE_EQ(config.real("data.train_portion"), 0.01);
}

TEST(ConfigSet, OriginAppearsInErrors) {
  Config config(search_option_table());
  const std::string error = test::error_of([&] { config.set("search.epochs", "-3", "file inputs/x.ini"); });
  EXPECT_EQ(error.rfind("file inputs/x.ini", 0), 0u) << error;
  EXPECT_NE(error.find("'-3'"), std::string::npos) << error;
}

TEST(ConfigSet, GetterOfTheWrongTypeIsAnError) {
  Config config(search_option_table());
  EXPECT_NE(test::error_of([&] { config.integer("search.lr"); }).find("search.lr"), std::string::npos);
  EXPECT_NE(test::error_of([&] { config.real("search.bogus"); }).find("search.bogus"), std::string::npos);
}

TEST(ConfigIni, ToIniRoundTripsDefaults) {
  TempDir dir;
  const Config original(search_option_table());
  const std::string path = dir.file("defaults.ini");
  write_file(path, original.to_ini());
  Config read_back(search_option_table());
  ASSERT_EQ(test::error_of([&] { read_config_file(read_back, path); }), "<no error>");
  EXPECT_EQ(read_back.hash(), original.hash());
}

TEST(ConfigIni, ToIniRoundTripsEveryValue) {
  const OptionTable& table = search_option_table();
  Config original(table);
  for (const auto& spec : table.specs()) original.set(spec.key, non_default_value(spec));
  const std::string ini = original.to_ini();
  for (const auto& spec : table.specs())
    EXPECT_NE(ini.find(name_of(spec.key) + " = "), std::string::npos) << spec.key << " missing from to_ini()";

  TempDir dir;
  const std::string path = dir.file("effective.ini");
  write_file(path, ini);
  Config read_back(table);
  ASSERT_EQ(test::error_of([&] { read_config_file(read_back, path); }), "<no error>") << ini;
  EXPECT_EQ(read_back.hash(), original.hash());
  EXPECT_NE(read_back.hash(), Config(table).hash());
  for (const auto& spec : table.specs()) {
    SCOPED_TRACE(spec.key);
    switch (spec.kind) {
      case OptionKind::integer: EXPECT_EQ(read_back.integer(spec.key), original.integer(spec.key)); break;
      case OptionKind::real: EXPECT_EQ(read_back.real(spec.key), original.real(spec.key)); break;
      case OptionKind::boolean: EXPECT_EQ(read_back.boolean(spec.key), original.boolean(spec.key)); break;
      case OptionKind::choice:
      case OptionKind::text: EXPECT_EQ(read_back.text(spec.key), original.text(spec.key)); break;
    }
  }
}

TEST(ConfigHash, ChangesWhenAnyValueChanges) {
  const OptionTable& table = search_option_table();
  const uint64_t base = Config(table).hash();
  EXPECT_EQ(Config(table).hash(), base);  // deterministic
  for (const auto& spec : table.specs()) {
    if (!allows_another_value(spec)) continue;
    Config config(table);
    config.set(spec.key, non_default_value(spec));
    EXPECT_NE(config.hash(), base) << spec.key;
    config.set(spec.key, spec.default_value);
    EXPECT_EQ(config.hash(), base) << spec.key << " back at its default";
  }
  Config a(table), b(table);
  a.set("search.epochs", "50");
  b.set("search.epochs", "51");
  EXPECT_NE(a.hash(), b.hash());
}

TEST(ConfigHelp, HelpIsReportedAndConfigFileIsNotRead) {
  TempDir dir;
  const std::string missing = dir.file("missing.ini");
  for (const std::string& flag : {std::string("--help"), std::string("-h")}) {
    SCOPED_TRACE(flag);
    Config config(search_option_table());
    CommandLine cl;
    const std::string error =
        test::error_of([&] { cl = parse_command_line(config, {"--config", missing, flag}); });
    EXPECT_EQ(error, "<no error>");  // the missing file was never opened
    EXPECT_TRUE(cl.help);
    EXPECT_EQ(cl.config_file, missing);
  }

  const std::string existing = dir.file("present.ini");
  write_file(existing, "[search]\nepochs = 7\n");
  Config config(search_option_table());
  const CommandLine cl = parse_command_line(config, {"--help", "--config", existing, "--search.lr", "0.5"});
  EXPECT_TRUE(cl.help);
  EXPECT_EQ(config.integer("search.epochs"), 100);  // the file was not read
  EXPECT_DOUBLE_EQ(config.real("search.lr"), 0.025);
  EXPECT_EQ(config.hash(), Config(search_option_table()).hash());
}

TEST(ConfigHelp, NoHelpWithoutTheFlag) {
  Config config(search_option_table());
  const CommandLine cl = parse_command_line(config, {});
  EXPECT_FALSE(cl.help);
  EXPECT_EQ(cl.config_file, "");
  EXPECT_EQ(config.hash(), Config(search_option_table()).hash());
}

TEST(ConfigHelp, HelpTextListsEveryOption) {
  const OptionTable& table = search_option_table();
  const std::string help = table.help_text();
  for (const auto& spec : table.specs())
    EXPECT_NE(help.find("--" + spec.key + " <"), std::string::npos) << spec.key;
  EXPECT_NE(help.find("integer in [1, 1000000]"), std::string::npos);
}

}  // namespace
}  // namespace probnas

namespace probnas {
namespace {

// Every shipped config in inputs/ parses: its keys exist and its values are in range.
TEST(ShippedConfigs, EveryInputsIniParses) {
  int parsed = 0;
  for (const auto& e : std::filesystem::directory_iterator(std::string(PROBNAS_SOURCE_DIR) + "/inputs")) {
    if (e.path().extension() != ".ini") continue;
    Config config(search_option_table());
    EXPECT_EQ(test::error_of([&] { read_config_file(config, e.path().string()); }), "<no error>") << e.path();
    ++parsed;
  }
  EXPECT_GE(parsed, 13);
}

}  // namespace
}  // namespace probnas
