#pragma once
// Processes: running a helper program (Graphviz's `dot`) without a shell, so paths with spaces or quotes need
// no escaping and nothing is interpreted.
#include <string>
#include <vector>

namespace probnas {

// The full path of an executable `name` in one of $PATH's folders, or "" when there is none.
std::string find_program(const std::string& name);

struct ProgramResult {
  int exit_code = -1;  // -1 when it could not be started or did not exit normally (killed by a signal)
  std::string output;  // stdout and stderr together, or why it could not be started
};

// This machine's host name ("?" when it cannot be read).
std::string host_name();

// Runs `program` (a path) with `args` (argv[1..]), stdin from /dev/null; waits for it to end.
ProgramResult run_program(const std::string& program, const std::vector<std::string>& args);

}  // namespace probnas
