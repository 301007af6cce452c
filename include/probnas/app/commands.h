#pragma once
#include <string>
#include <vector>

namespace probnas {

// The CLI: `probnas <command> [options]`. Returns the process exit code; a failing rank aborts the job.
int run_cli(const std::vector<std::string>& args, int* argc, char*** argv);

}  // namespace probnas
