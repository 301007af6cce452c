#pragma once
// `probnas compare <run folders...>`: one row per search (and its retraining, if any) with the
// search cost, the accuracies, the network's size, the share of parameter-free operations in the
// derived cells (DARTS's collapse symptom) and, for NB201 cells, NAS-Bench-201's 200-epoch test
// accuracies. Reads only the JSON/INI files the search and train commands write; no torch.
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace probnas {

struct CompareRow {
  std::string folder;        // as given on the command line
  std::string search_folder; // the search run folder (genotype.json); "" when unknown
  std::string train_folder;  // the folder of the retraining's result.json; "" when none
  std::string method, space, dataset;
  // The method's variant, from the keys its registry entry names (GibbsNAS:
  // "gibbs.order=1 gibbs.arch_lr_schedule=cosine"); "" if none.
  std::string variant;
  std::optional<int64_t> seed;
  std::string genotype;      // the space's notation (NB201 string, DARTS Genotype(...), PGNAS summary)

  // Search (genotype.json, metrics.jsonl, config.ini).
  std::optional<int64_t> epochs_done, epochs_total;  // genotype.json epochs_done / config.ini search.epochs
  std::optional<double> search_wall_s;                // metrics.jsonl's last wall_s
  std::optional<int64_t> search_images;               // metrics.jsonl's last images
  std::optional<double> search_val_acc;               // fraction (PGNAS: best.val_acc)

  // Test accuracy (result.json; PGNAS without retraining: best.test_acc as sampled).
  std::optional<double> test_acc;                     // fraction
  std::string test_mode;                              // retrained, as_sampled, fine_tuned; "" when none
  std::optional<int64_t> params;                      // result.json params (PGNAS: best.params)
  std::optional<double> flops;                        // result.json flops
  std::optional<int64_t> train_epochs;                // result.json epochs
  std::optional<double> train_wall_s;                 // result.json wall_s

  // Parameter-free operations (skip, pooling) over the non-`none` operations of the derived cells;
  // DARTS space: both cells, and the normal cell alone. Blank for the multibranch space.
  std::optional<double> param_free_share, param_free_share_normal;

  // NAS-Bench-201's 200-epoch test accuracies in percent (NB201 genotypes, with a table).
  std::optional<int64_t> nb201_index;
  std::optional<double> nb201_cifar10, nb201_cifar100, nb201_imagenet16;

  // What is blank and why, what looks inconsistent; each prefixed with the folder by the printers.
  std::vector<std::string> notes;
};

// One row per folder. A folder is a search run folder (genotype.json; its retraining, if any, in
// <folder>/train/result.json) or a train folder (result.json whose "search_run" names the search
// folder). `nb201_table_path` "" = no NAS-Bench-201 lookup. Errors name the folder and the missing
// or malformed file.
std::vector<CompareRow> compare_runs(const std::vector<std::string>& folders, const std::string& nb201_table_path);

// The parameter-free share of a genotype string ("nb201" or "darts" space): {all cells, normal cell}
// (the second only for "darts"). Throws probnas::Error naming the problem on malformed notation.
std::pair<double, std::optional<double>> param_free_share(const std::string& space, const std::string& genotype);

// The CSV/sort column names, in CSV order.
std::vector<std::string> compare_columns();
// Stable sort by a CSV column (or alias: test, val, c10, c100, in16, time, ...): accuracies best
// first, costs and text ascending, blanks last. Throws probnas::Error for an unknown column.
void sort_compare_rows(std::vector<CompareRow>& rows, const std::string& column);

std::string compare_table_text(const std::vector<CompareRow>& rows);  // aligned columns for a terminal
std::string compare_csv(const std::vector<CompareRow>& rows);         // header + one line per row, RFC 4180

// probnas compare [--csv FILE] [--nb201-table auto|none|PATH] [--sort COLUMN] [--help] <folders...>
// Returns the exit code: 0 ok, 1 error (message on `err`), 2 bad usage.
int compare_command(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace probnas
