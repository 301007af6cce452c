#pragma once
// What PARSEC adds to report.html (report/method_sections.h).
#include "probnas/report/method_sections.h"

namespace probnas {

MethodSections parsec_report_sections();

}  // namespace probnas
