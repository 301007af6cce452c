// probnas compare: rows read from fixture run folders (NB201 searches scored with the shipped
// NAS-Bench-201 table, a DARTS search with its retraining, a train folder, a PGNAS ranking), the
// parameter-free share, the CSV read back, the text table, the notes, sorting and the errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "probnas/app/compare.h"
#include "test_support.h"

namespace probnas {
namespace {

namespace fs = std::filesystem;

const std::string kTable = std::string(PROBNAS_SOURCE_DIR) + "/inputs/nb201/nats_bench.csv";
const std::string kDrnasCell =
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|";
const std::string kSkipCell =
    "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|";
// Well-formed NB201 notation with an operation NAS-Bench-201 does not have.
const std::string kOddCell =
    "|sep_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|";
// DARTS (second order) from the DARTS paper, as probnas writes it.
const std::string kDartsV2 =
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=range(2, 6), "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=range(2, 6))";

std::string json_string(const std::string& s) {
  std::string q = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') q += '\\';
    q += c;
  }
  return q + "\"";
}

// A search run folder as the search engine leaves it: genotype.json, metrics.jsonl, config.ini.
void make_search(const std::string& dir, const std::string& space, const std::string& method, int seed,
                 const std::string& genotype, double val_acc, double wall_s, long images, int epochs_done,
                 int epochs_total, const std::string& extra_json = "") {
  fs::create_directories(dir);
  std::string edges = "[]";
  if (space == "nb201") {  // the six edges as the engine writes them (op per edge, with probabilities)
    edges = "[{\"group\": \"cell\", \"edge\": \"1<-0\", \"op\": \"skip_connect\", \"probs\": {\"skip_connect\": 0.3}}]";
  }
  test::write_file(dir + "/genotype.json",
                   "{\n  \"space\": " + json_string(space) + ",\n  \"genotype\": " + json_string(genotype) +
                       ",\n  \"edges\": " + edges + ",\n  \"method\": " + json_string(method) +
                       ",\n  \"dataset\": \"cifar10\",\n  \"seed\": " + std::to_string(seed) +
                       ",\n  \"epochs_done\": " + std::to_string(epochs_done) +
                       ",\n  \"search_val_acc\": " + std::to_string(val_acc) + extra_json + "\n}\n");
  test::write_file(dir + "/metrics.jsonl",
                   "{\"epoch\":1,\"val_acc\":0.1,\"images\":1000,\"wall_s\":10.0}\n"
                   "{\"epoch\":" + std::to_string(epochs_done) + ",\"val_acc\":" + std::to_string(val_acc) +
                       ",\"images\":" + std::to_string(images) + ",\"wall_s\":" + std::to_string(wall_s) + "}\n");
  test::write_file(dir + "/config.ini", "# probnas effective configuration\n\n[run]\nseed = " + std::to_string(seed) +
                                            "\n\n[search]\n# search method\nmethod = " + method +
                                            "\n# search epochs\nepochs = " + std::to_string(epochs_total) +
                                            "\n\n[progressive]\nepochs = \n");
}

void make_result(const std::string& dir, const std::string& search_run, const std::string& space,
                 const std::string& method, const std::string& genotype, const std::string& mode, double test_acc,
                 long params, double flops, int seed) {
  fs::create_directories(dir);
  test::write_file(dir + "/result.json",
                   "{\"command\": \"train\", \"search_run\": " + json_string(search_run) +
                       ", \"genotype_file\": \"genotype.json\", \"space\": " + json_string(space) +
                       ", \"genotype\": " + json_string(genotype) + ", \"method\": " + json_string(method) +
                       ", \"dataset\": \"cifar10\", \"mode\": " + json_string(mode) +
                       ", \"test_acc\": " + std::to_string(test_acc) +
                       ", \"test_loss\": 0.1, \"test_images\": 10000, \"params\": " + std::to_string(params) +
                       ", \"params_auxiliary\": 0, \"flops\": " + std::to_string(flops) +
                       ", \"epochs\": 600, \"channels\": 36, \"cells\": 20, \"wall_s\": 80000.5, \"images\": 30000000"
                       ", \"seed\": " + std::to_string(seed) + ", \"finished_at\": \"2025-01-01T00:00:00Z\"}\n");
}

// RFC 4180 reader for checking the CSV: quoted fields with doubled quotes, commas and newlines.
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, field_started = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') field += '"', ++i;
      else if (c == '"') quoted = false;
      else field += c;
    } else if (c == '"' && !field_started) {
      quoted = field_started = true;
    } else if (c == ',') {
      row.push_back(field), field.clear(), field_started = false;
    } else if (c == '\n') {
      row.push_back(field), field.clear(), field_started = false;
      rows.push_back(row), row.clear();
    } else {
      field += c, field_started = true;
    }
  }
  EXPECT_TRUE(field.empty() && row.empty()) << "the CSV does not end with a newline";
  return rows;
}

const CompareRow& row_of(const std::vector<CompareRow>& rows, const std::string& folder) {
  for (const auto& r : rows)
    if (r.folder == folder) return r;
  ADD_FAILURE() << "no row for " << folder;
  static const CompareRow none;
  return none;
}

bool has_note(const CompareRow& r, const std::string& part) {
  for (const auto& n : r.notes)
    if (n.find(part) != std::string::npos) return true;
  return false;
}

// Every fixture: four NB201 searches, a DARTS search with its retraining, a train folder of another
// DARTS search, a PGNAS ranking.
class CompareFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kTable)) << kTable << " (the NAS-Bench-201 table shipped with probnas) is missing";
    root = tmp.path();
    drnas0 = root + "/drnas-nb201-s0";
    drnas1 = root + "/drnas-nb201-s1";
    darts_skip = root + "/darts-nb201-s0";
    odd = root + "/odd-nb201";
    darts_space = root + "/drnas-darts-s0";
    darts_space1 = root + "/drnas-darts-s1";
    train_dir = root + "/trains/drnas-darts-s1-600ep";
    pgnas = root + "/pgnas-mb";
    make_search(drnas0, "nb201", "drnas", 0, kDrnasCell, 0.8812, 3725.4, 2500000, 50, 50);
    make_search(drnas1, "nb201", "drnas", 1, kDrnasCell, 0.8790, 3600.0, 2500000, 50, 50);
    make_search(darts_skip, "nb201", "darts", 0, kSkipCell, 0.9012, 185.0, 49920, 5, 50);
    make_search(odd, "nb201", "darts", 2, kOddCell, 0.5, 12.0, 640, 1, 50);
    make_search(darts_space, "darts", "drnas", 0, kDartsV2, 0.8512, 90061.0, 123456789, 50, 50);
    make_result(darts_space + "/train", darts_space, "darts", "drnas", kDartsV2, "retrained", 0.9724, 3349450, 5.47e8, 0);
    make_search(darts_space1, "darts", "drnas", 1, kDartsV2, 0.8498, 90000.0, 123456789, 50, 50);
    // search_run relative to the train folder only (not to the test's working folder).
    make_result(train_dir, "../../drnas-darts-s1", "darts", "drnas", kDartsV2, "fine_tuned", 0.9650, 3349450, 5.47e8, 1);
    make_search(pgnas, "multibranch", "pgnas", 3, "multibranch guided candidate #3: 123456 weights", 0.0, 500.0, 64000,
                10, 10,
                ",\n  \"best\": {\"sampling\": \"guided\", \"index\": 3, \"val_acc\": 0.71, \"val_loss\": 0.9, "
                "\"test_acc\": 0.705, \"params\": 123456, \"kept_fraction\": 0.5, \"network\": \"best_network.h5\"}");
  }

  std::vector<std::string> all() const {
    return {drnas0, drnas1, darts_skip, odd, darts_space, train_dir, pgnas};
  }

  test::TempDir tmp;
  std::string root, drnas0, drnas1, darts_skip, odd, darts_space, darts_space1, train_dir, pgnas;
};

TEST(CompareParamFree, SharesOfKnownGenotypes) {
  EXPECT_DOUBLE_EQ(param_free_share("nb201", kSkipCell).first, 1.0);
  EXPECT_FALSE(param_free_share("nb201", kSkipCell).second.has_value());
  EXPECT_DOUBLE_EQ(param_free_share("nb201", kDrnasCell).first, 1.0 / 6);
  // `none` edges do not count: avg_pool and skip among 3 operations.
  EXPECT_DOUBLE_EQ(
      param_free_share("nb201", "|avg_pool_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|nor_conv_1x1~2|").first,
      2.0 / 3);
  // DARTS-V2: normal cell 2 skip_connect of 8; reduce cell 5 max_pool + 3 skip_connect of 8.
  const auto v2 = param_free_share("darts", kDartsV2);
  ASSERT_TRUE(v2.second.has_value());
  EXPECT_DOUBLE_EQ(*v2.second, 0.25);
  EXPECT_DOUBLE_EQ(v2.first, (2.0 + 8.0) / 16);
  EXPECT_NE(test::error_of([] { param_free_share("nb201", "|nor_conv_3x3~0|+|nor_conv_3x3~0|"); }).find("3 nodes"),
            std::string::npos);
  EXPECT_NE(test::error_of([] { param_free_share("darts", "normal=[('skip_connect', 0)]"); }).find("Genotype("),
            std::string::npos);
  EXPECT_NE(test::error_of([] { param_free_share("nb201", "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"); })
                .find("no operation other than none"),
            std::string::npos);
}

// Variants: a key the registry entry names is read from config.ini; one absent there (a folder older
// than the option) takes the value runs had before it existed (GibbsNAS: a constant alpha rate), so
// old and new folders of one variant share a summary line and other values get their own. A folder
// without any config.ini has no variant to tell.
TEST(CompareVariants, AKeyMissingFromAnOldFolderTakesTheValueRunsHadBeforeIt) {
  test::TempDir tmp;
  const std::string no_keys = tmp.path() + "/g-old", old_order1 = tmp.path() + "/g1-old",
                    constant = tmp.path() + "/g1-constant", cosine = tmp.path() + "/g1-cos",
                    no_config = tmp.path() + "/g-no-config";
  for (const auto& dir : {no_keys, old_order1, constant, cosine, no_config})
    make_search(dir, "nb201", "gibbsnas", 0, kDrnasCell, 0.5, 10.0, 640, 1, 1);
  auto append = [](const std::string& dir, const std::string& text) {
    std::ofstream(dir + "/config.ini", std::ios::app) << text;
  };
  append(old_order1, "\n[gibbs]\norder = 1\n");
  append(constant, "\n[gibbs]\norder = 1\narch_lr_schedule = constant\n");
  append(cosine, "\n[gibbs]\norder = 1\narch_lr_schedule = cosine\n");
  fs::remove(no_config + "/config.ini");
  const auto rows = compare_runs({no_keys, old_order1, constant, cosine, no_config}, "");
  // gibbs.order has no value for folders without it (it is in every GibbsNAS config.ini probnas wrote).
  EXPECT_EQ(row_of(rows, no_keys).variant, "gibbs.arch_lr_schedule=constant");
  EXPECT_EQ(row_of(rows, old_order1).variant, "gibbs.order=1 gibbs.arch_lr_schedule=constant");
  EXPECT_EQ(row_of(rows, constant).variant, "gibbs.order=1 gibbs.arch_lr_schedule=constant");
  EXPECT_EQ(row_of(rows, cosine).variant, "gibbs.order=1 gibbs.arch_lr_schedule=cosine");
  EXPECT_EQ(row_of(rows, no_config).variant, "");
  const std::string text = compare_table_text(rows);
  EXPECT_NE(text.find("gibbsnas [gibbs.order=1 gibbs.arch_lr_schedule=constant] nb201 cifar10, 2 runs"),
            std::string::npos)
      << text;
}

// PARSEC's searches with other learning rates of pi (the default moved from 3e-3 to 3e-2 on
// 2026-12-08) are variants of their own, so that a folder of either rate never joins the other's
// mean; every PARSEC config.ini probnas wrote holds the key.
TEST(CompareVariants, ParsecSearchesWithOtherRatesOfPiAreToldApart) {
  test::TempDir tmp;
  const std::string slow0 = tmp.path() + "/p-slow0", slow1 = tmp.path() + "/p-slow1", fast = tmp.path() + "/p-fast";
  for (const auto& dir : {slow0, slow1, fast}) make_search(dir, "nb201", "parsec", 0, kDrnasCell, 0.5, 10.0, 640, 1, 1);
  std::ofstream(slow0 + "/config.ini", std::ios::app) << "\n[parsec]\narch_lr = 0.003\n";
  std::ofstream(slow1 + "/config.ini", std::ios::app) << "\n[parsec]\narch_lr = 0.003\n";
  std::ofstream(fast + "/config.ini", std::ios::app) << "\n[parsec]\narch_lr = 0.01\n";
  const auto rows = compare_runs({slow0, slow1, fast}, "");
  EXPECT_EQ(row_of(rows, slow0).variant, "parsec.arch_lr=0.003");
  EXPECT_EQ(row_of(rows, fast).variant, "parsec.arch_lr=0.01");
  const std::string text = compare_table_text(rows);
  EXPECT_NE(text.find("parsec [parsec.arch_lr=0.003] nb201 cifar10, 2 runs"), std::string::npos) << text;
  EXPECT_EQ(text.find("3 runs"), std::string::npos) << text;  // the 1e-2 folder joined no mean
}

TEST_F(CompareFixture, RowsHoldTheSearchTrainAndBenchmarkValues) {
  const auto rows = compare_runs(all(), kTable);
  ASSERT_EQ(rows.size(), 7u);
  EXPECT_EQ(rows[0].folder, drnas0);  // the order given
  EXPECT_EQ(rows[6].folder, pgnas);

  const auto& d0 = row_of(rows, drnas0);
  EXPECT_EQ(d0.method, "drnas");
  EXPECT_EQ(d0.space, "nb201");
  EXPECT_EQ(d0.dataset, "cifar10");
  EXPECT_EQ(d0.seed, 0);
  EXPECT_EQ(d0.genotype, kDrnasCell);
  EXPECT_EQ(d0.epochs_done, 50);
  EXPECT_EQ(d0.epochs_total, 50);
  ASSERT_TRUE(d0.search_wall_s && d0.search_images && d0.search_val_acc);
  EXPECT_NEAR(*d0.search_wall_s, 3725.4, 1e-6);
  EXPECT_EQ(*d0.search_images, 2500000);
  EXPECT_NEAR(*d0.search_val_acc, 0.8812, 1e-9);
  EXPECT_FALSE(d0.test_acc.has_value());
  EXPECT_EQ(d0.test_mode, "");
  EXPECT_TRUE(d0.train_folder.empty());
  ASSERT_TRUE(d0.nb201_cifar10 && d0.nb201_cifar100 && d0.nb201_imagenet16 && d0.nb201_index);
  EXPECT_NEAR(*d0.nb201_cifar10, 94.363, 1e-3);
  EXPECT_NEAR(*d0.nb201_cifar100, 73.513, 1e-3);
  EXPECT_NEAR(*d0.nb201_imagenet16, 46.344, 1e-3);
  EXPECT_EQ(*d0.nb201_index, 9930);
  ASSERT_TRUE(d0.param_free_share.has_value());
  EXPECT_DOUBLE_EQ(*d0.param_free_share, 1.0 / 6);
  EXPECT_FALSE(d0.param_free_share_normal.has_value());
  EXPECT_TRUE(d0.notes.empty()) << d0.notes.front();

  const auto& skip = row_of(rows, darts_skip);
  ASSERT_TRUE(skip.param_free_share && skip.nb201_cifar10);
  EXPECT_DOUBLE_EQ(*skip.param_free_share, 1.0);
  EXPECT_NEAR(*skip.nb201_cifar10, 54.30, 0.01);  // DARTS's collapse on NAS-Bench-201
  EXPECT_EQ(skip.epochs_done, 5);
  EXPECT_EQ(skip.epochs_total, 50);

  const auto& o = row_of(rows, odd);
  EXPECT_FALSE(o.nb201_cifar10.has_value());
  EXPECT_TRUE(has_note(o, "genotype '" + kOddCell + "' is not in the NAS-Bench-201 table: "));
  EXPECT_TRUE(has_note(o, "well-formed NB201 cell")) << (o.notes.empty() ? "" : o.notes.front());

  // DARTS space, retrained in <folder>/train.
  const auto& ds = row_of(rows, darts_space);
  EXPECT_EQ(ds.search_folder, darts_space);
  EXPECT_EQ(ds.train_folder, darts_space + "/train");
  EXPECT_EQ(ds.space, "darts");
  EXPECT_EQ(ds.genotype, kDartsV2);
  ASSERT_TRUE(ds.test_acc && ds.params && ds.flops && ds.search_wall_s && ds.search_val_acc);
  EXPECT_NEAR(*ds.test_acc, 0.9724, 1e-9);
  EXPECT_EQ(ds.test_mode, "retrained");
  EXPECT_EQ(*ds.params, 3349450);
  EXPECT_NEAR(*ds.flops, 5.47e8, 1);
  EXPECT_EQ(ds.train_epochs, 600);
  EXPECT_NEAR(*ds.search_wall_s, 90061.0, 1e-6);
  EXPECT_NEAR(*ds.search_val_acc, 0.8512, 1e-9);
  ASSERT_TRUE(ds.param_free_share && ds.param_free_share_normal);
  EXPECT_DOUBLE_EQ(*ds.param_free_share, 10.0 / 16);
  EXPECT_DOUBLE_EQ(*ds.param_free_share_normal, 0.25);
  EXPECT_FALSE(ds.nb201_cifar10.has_value());
  EXPECT_TRUE(ds.notes.empty()) << ds.notes.front();

  // A train folder given directly: its search found through search_run.
  const auto& t = row_of(rows, train_dir);
  EXPECT_EQ(t.train_folder, train_dir);
  EXPECT_EQ(fs::weakly_canonical(t.search_folder), fs::weakly_canonical(darts_space1));
  EXPECT_EQ(t.seed, 1);
  EXPECT_EQ(t.test_mode, "fine_tuned");
  ASSERT_TRUE(t.test_acc && t.search_val_acc && t.search_images);
  EXPECT_NEAR(*t.test_acc, 0.9650, 1e-9);
  EXPECT_NEAR(*t.search_val_acc, 0.8498, 1e-9);  // from the search folder's genotype.json
  EXPECT_EQ(*t.search_images, 123456789);
  EXPECT_EQ(t.epochs_total, 50);

  // PGNAS: best candidate's accuracies as sampled; no parameter-free share for the multibranch space.
  const auto& p = row_of(rows, pgnas);
  EXPECT_EQ(p.method, "pgnas");
  EXPECT_EQ(p.space, "multibranch");
  ASSERT_TRUE(p.search_val_acc && p.test_acc && p.params);
  EXPECT_NEAR(*p.search_val_acc, 0.71, 1e-9);
  EXPECT_NEAR(*p.test_acc, 0.705, 1e-9);
  EXPECT_EQ(p.test_mode, "as_sampled");
  EXPECT_EQ(*p.params, 123456);
  EXPECT_FALSE(p.param_free_share.has_value());
  EXPECT_FALSE(p.nb201_cifar10.has_value());
  EXPECT_TRUE(p.notes.empty()) << p.notes.front();
}

TEST_F(CompareFixture, WithoutTheTableThereAreNoBenchmarkValuesAndNoNotFoundNotes) {
  const auto rows = compare_runs({drnas0, odd}, "");
  EXPECT_FALSE(rows[0].nb201_cifar10.has_value());
  EXPECT_TRUE(rows[1].notes.empty());
  ASSERT_TRUE(rows[0].param_free_share.has_value());  // needs no table
}

TEST_F(CompareFixture, CsvReadsBackWithEveryColumn) {
  const auto rows = compare_runs(all(), kTable);
  const auto csv = parse_csv(compare_csv(rows));
  ASSERT_EQ(csv.size(), rows.size() + 1);
  EXPECT_EQ(csv[0], compare_columns());
  std::map<std::string, size_t> col;
  for (size_t i = 0; i < csv[0].size(); ++i) col[csv[0][i]] = i;
  for (const auto& line : csv) ASSERT_EQ(line.size(), csv[0].size());
  auto cell = [&](size_t row, const std::string& name) {
    EXPECT_TRUE(col.count(name)) << name;
    return csv[row + 1][col[name]];
  };
  // The DrNAS NB201 row.
  EXPECT_EQ(cell(0, "folder"), drnas0);
  EXPECT_EQ(cell(0, "method"), "drnas");
  EXPECT_EQ(cell(0, "seed"), "0");
  EXPECT_EQ(cell(0, "genotype"), kDrnasCell);
  EXPECT_NEAR(std::stod(cell(0, "search_wall_s")), 3725.4, 1e-6);
  EXPECT_EQ(cell(0, "search_images"), "2500000");
  EXPECT_NEAR(std::stod(cell(0, "search_val_acc")), 0.8812, 1e-9);
  EXPECT_EQ(cell(0, "test_acc"), "");
  EXPECT_NEAR(std::stod(cell(0, "nb201_cifar10_pct")), 94.363, 1e-3);
  EXPECT_NEAR(std::stod(cell(0, "nb201_cifar100_pct")), 73.513, 1e-3);
  EXPECT_NEAR(std::stod(cell(0, "nb201_imagenet16_pct")), 46.344, 1e-3);
  EXPECT_EQ(cell(0, "nb201_index"), "9930");
  EXPECT_NEAR(std::stod(cell(0, "param_free_share")), 1.0 / 6, 1e-9);
  EXPECT_EQ(cell(0, "param_free_share_normal"), "");
  // The odd cell: its note in the notes column.
  EXPECT_NE(cell(3, "notes").find("is not in the NAS-Bench-201 table"), std::string::npos);
  EXPECT_EQ(cell(3, "nb201_cifar10_pct"), "");
  // The DARTS row: the full genotype (commas and quotes inside) survives quoting.
  EXPECT_EQ(cell(4, "genotype"), kDartsV2);
  EXPECT_NEAR(std::stod(cell(4, "test_acc")), 0.9724, 1e-9);
  EXPECT_EQ(cell(4, "test_mode"), "retrained");
  EXPECT_EQ(cell(4, "params"), "3349450");
  EXPECT_NEAR(std::stod(cell(4, "flops")), 5.47e8, 1);
  EXPECT_NEAR(std::stod(cell(4, "param_free_share")), 0.625, 1e-9);
  EXPECT_NEAR(std::stod(cell(4, "param_free_share_normal")), 0.25, 1e-9);
  EXPECT_EQ(cell(4, "train_folder"), darts_space + "/train");
  EXPECT_EQ(cell(5, "test_mode"), "fine_tuned");
  EXPECT_EQ(cell(6, "test_mode"), "as_sampled");
  EXPECT_EQ(cell(6, "params"), "123456");
  EXPECT_EQ(cell(6, "param_free_share"), "");
}

TEST_F(CompareFixture, TextTableIsAlignedWithHumanUnitsNotesAndSummary) {
  const auto rows = compare_runs(all(), kTable);
  const std::string text = compare_table_text(rows);
  std::vector<std::string> lines;
  {
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
  }
  ASSERT_GE(lines.size(), 2 + rows.size());
  const std::string& header = lines[0];
  // Right-aligned numbers end under their header; left-aligned text starts under it.
  const auto test_end = header.find("test %") + 6;
  ASSERT_NE(header.find("test %"), std::string::npos) << text;
  const std::string& ds_line = lines[2 + 4];
  EXPECT_EQ(ds_line.find("97.24") + 5, test_end) << text;
  const auto method_at = header.find("method");
  for (size_t r = 0; r < rows.size(); ++r) EXPECT_EQ(lines[2 + r].find(rows[r].method, method_at), method_at) << text;
  EXPECT_NE(lines[2].find("1h02m"), std::string::npos) << text;  // 3725.4 s
  EXPECT_NE(lines[4].find("3m05s"), std::string::npos) << text;  // 185 s
  EXPECT_NE(lines[6].find("25h01m"), std::string::npos) << text;  // 90061 s
  EXPECT_NE(lines[2].find("94.36"), std::string::npos) << text;
  EXPECT_NE(lines[2].find("88.12"), std::string::npos) << text;   // search val %, 2 decimals
  EXPECT_NE(lines[2].find("2.5M"), std::string::npos) << text;    // images
  EXPECT_NE(ds_line.find("3.35"), std::string::npos) << text;     // params in M
  EXPECT_NE(ds_line.find("547.0"), std::string::npos) << text;    // FLOPs in M
  EXPECT_NE(ds_line.find("62.5%"), std::string::npos) << text;    // param-free, both cells
  EXPECT_NE(ds_line.find("25.0%"), std::string::npos) << text;    // normal cell
  EXPECT_NE(ds_line.find("retrained"), std::string::npos) << text;
  EXPECT_NE(ds_line.find("Genotype(normal=[('sep_conv_3x3', 0)"), std::string::npos) << text;
  EXPECT_EQ(ds_line.find("reduce_concat"), std::string::npos) << "the table shortens long genotypes\n" << text;
  EXPECT_NE(text.find(odd + ": genotype '" + kOddCell + "' is not in the NAS-Bench-201 table: "), std::string::npos)
      << text;
  // Two DrNAS NB201 seeds: a summary line with their benchmark mean ± std.
  EXPECT_NE(text.find("drnas nb201 cifar10, 2 runs (seeds 0,1)"), std::string::npos) << text;
  EXPECT_NE(text.find("search val 88.01 ± 0.16%;"), std::string::npos) << text;
  EXPECT_NE(text.find("NB201 C10 94.36 ± 0.00"), std::string::npos) << text;
}

TEST_F(CompareFixture, SortsByTestAccuracyAndBenchmarkBestFirstBlanksLast) {
  auto rows = compare_runs(all(), kTable);
  sort_compare_rows(rows, "test");
  EXPECT_EQ(rows[0].folder, darts_space);  // 97.24
  EXPECT_EQ(rows[1].folder, train_dir);    // 96.50
  EXPECT_EQ(rows[2].folder, pgnas);        // 70.5
  EXPECT_EQ(rows[3].folder, drnas0);       // blanks keep their order
  EXPECT_EQ(rows[6].folder, odd);
  sort_compare_rows(rows, "nb201_cifar10_pct");
  EXPECT_EQ(rows[0].folder, drnas0);
  EXPECT_EQ(rows[1].folder, drnas1);
  EXPECT_EQ(rows[2].folder, darts_skip);
  sort_compare_rows(rows, "time");  // costs ascending
  EXPECT_EQ(rows[0].folder, odd);
  EXPECT_EQ(rows[1].folder, darts_skip);
  sort_compare_rows(rows, "params");  // ascending, blanks last
  EXPECT_EQ(rows[0].folder, pgnas);
  EXPECT_TRUE(rows[1].params && rows[2].params);
  for (size_t i = 3; i < rows.size(); ++i) EXPECT_FALSE(rows[i].params.has_value()) << rows[i].folder;
  EXPECT_NE(test::error_of([&] { sort_compare_rows(rows, "bogus"); }).find("bogus"), std::string::npos);
}

TEST_F(CompareFixture, ErrorsNameTheFolderAndTheFile) {
  const std::string empty = root + "/empty-run";
  fs::create_directories(empty);
  std::string msg = test::error_of([&] { compare_runs({drnas0, empty}, ""); });
  EXPECT_NE(msg.find(empty), std::string::npos) << msg;
  EXPECT_NE(msg.find("genotype.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("result.json"), std::string::npos) << msg;

  msg = test::error_of([&] { compare_runs({root + "/no-such-run"}, ""); });
  EXPECT_NE(msg.find(root + "/no-such-run"), std::string::npos) << msg;

  test::write_file(drnas1 + "/genotype.json", "{\"space\": \"nb201\", \"genotype\": ");  // torn
  msg = test::error_of([&] { compare_runs({drnas1}, ""); });
  EXPECT_NE(msg.find(drnas1 + "/genotype.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("malformed JSON"), std::string::npos) << msg;

  test::write_file(darts_space + "/train/result.json", "{\"test_acc\": 0.9, oops}");
  msg = test::error_of([&] { compare_runs({darts_space}, ""); });
  EXPECT_NE(msg.find(darts_space + "/train/result.json"), std::string::npos) << msg;

  test::write_file(darts_space + "/train/result.json", "{\"test_acc\": \"97%\"}");
  msg = test::error_of([&] { compare_runs({darts_space}, ""); });
  EXPECT_NE(msg.find("result.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("test_acc"), std::string::npos) << msg;
}

TEST_F(CompareFixture, TornMetricsLineAndMissingSearchAreNotedNotBlank) {
  // A run killed mid-line: the cost comes from the line before, and a note says so.
  std::string metrics = "{\"epoch\":1,\"images\":1000,\"wall_s\":10.0}\n{\"epoch\":2,\"images\":20";
  test::write_file(drnas1 + "/metrics.jsonl", metrics);
  auto rows = compare_runs({drnas1}, "");
  ASSERT_TRUE(rows[0].search_images.has_value());
  EXPECT_EQ(*rows[0].search_images, 1000);
  EXPECT_TRUE(has_note(rows[0], "torn"));

  fs::remove(drnas1 + "/metrics.jsonl");
  rows = compare_runs({drnas1}, "");
  EXPECT_FALSE(rows[0].search_wall_s.has_value());
  EXPECT_TRUE(has_note(rows[0], "no metrics.jsonl"));

  // A train folder whose search is gone: the trained values, and a note naming the missing search.
  const std::string lone = root + "/lone-train";
  make_result(lone, root + "/deleted-search", "darts", "darts", kDartsV2, "retrained", 0.97, 3300000, 5e8, 4);
  rows = compare_runs({lone}, "");
  EXPECT_EQ(rows[0].seed, 4);
  EXPECT_EQ(rows[0].genotype, kDartsV2);
  ASSERT_TRUE(rows[0].test_acc.has_value());
  EXPECT_NEAR(*rows[0].test_acc, 0.97, 1e-9);
  EXPECT_TRUE(has_note(rows[0], root + "/deleted-search")) << (rows[0].notes.empty() ? "" : rows[0].notes.front());

  // A result.json without a test accuracy (a training that has not tested yet) says so.
  test::write_file(lone + "/result.json", "{\"command\": \"train\", \"space\": \"darts\", \"genotype\": " +
                                              json_string(kDartsV2) + ", \"mode\": \"retrained\"}");
  rows = compare_runs({lone}, "");
  EXPECT_FALSE(rows[0].test_acc.has_value());
  EXPECT_TRUE(has_note(rows[0], "holds no test_acc"));
  EXPECT_TRUE(has_note(rows[0], "names no search_run"));

  // A retraining of another genotype than the search now reports.
  make_result(darts_space + "/train", darts_space, "darts", "drnas", kDartsV2.substr(0, 40) + ")]", "retrained", 0.9, 1,
              1, 0);
  rows = compare_runs({darts_space}, "");
  EXPECT_TRUE(has_note(rows[0], "differs"));
}

TEST_F(CompareFixture, CommandLine) {
  std::ostringstream out, err;
  EXPECT_EQ(compare_command({"--help"}, out, err), 0);
  EXPECT_NE(out.str().find("usage: probnas compare"), std::string::npos);

  out.str(""), err.str("");
  EXPECT_EQ(compare_command({}, out, err), 2);
  EXPECT_NE(err.str().find("no run folders"), std::string::npos);
  EXPECT_EQ(compare_command({"--bogus", drnas0}, out, err), 2);
  EXPECT_EQ(compare_command({"--sort", "nonsense", drnas0}, out, err), 2);
  EXPECT_EQ(compare_command({drnas0, "--csv"}, out, err), 2);

  out.str(""), err.str("");
  EXPECT_EQ(compare_command({"--nb201-table", kTable, "--sort", "test", drnas0, darts_space + "/"}, out, err), 0)
      << err.str();
  const std::string table = out.str();
  EXPECT_LT(table.find(darts_space), table.find(drnas0)) << table;  // sorted: the retrained run first
  EXPECT_NE(table.find("94.36"), std::string::npos) << table;

  out.str(""), err.str("");
  EXPECT_EQ(compare_command({"--nb201-table=none", "--csv", "-", drnas0}, out, err), 0) << err.str();
  auto csv = parse_csv(out.str());
  ASSERT_EQ(csv.size(), 2u);
  EXPECT_EQ(csv[0].front(), "folder");
  EXPECT_EQ(csv[1].front(), drnas0);

  out.str(""), err.str("");
  const std::string file = root + "/compare.csv";
  EXPECT_EQ(compare_command({"--nb201-table", kTable, "--csv", file, drnas0, pgnas}, out, err), 0) << err.str();
  ASSERT_TRUE(fs::exists(file));
  {
    std::ifstream in(file);
    std::stringstream ss;
    ss << in.rdbuf();
    csv = parse_csv(ss.str());
  }
  ASSERT_EQ(csv.size(), 3u);
  EXPECT_EQ(csv[2].front(), pgnas);

  out.str(""), err.str("");
  EXPECT_EQ(compare_command({"--nb201-table", "none", root + "/nowhere"}, out, err), 1);
  EXPECT_NE(err.str().find(root + "/nowhere"), std::string::npos) << err.str();
  EXPECT_EQ(compare_command({"--nb201-table", root + "/missing.csv", drnas0}, out, err), 1);
  EXPECT_NE(err.str().find("missing.csv"), std::string::npos) << err.str();
}

}  // namespace
}  // namespace probnas
