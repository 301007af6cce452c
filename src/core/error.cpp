#include "probnas/core/error.h"

#include "probnas/core/log.h"

namespace probnas {

Error::Error(const std::string& message, const char* file, int line)
    : std::runtime_error(message),
      where_(detail::concat(file, ":", line, " (rank ", log::rank(), ")")) {}

}  // namespace probnas
