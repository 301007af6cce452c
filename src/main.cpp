// probnas: probabilistic neural architecture search, an MPI batch application.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "probnas/app/commands.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return probnas::run_cli(args, &argc, &argv);
}
