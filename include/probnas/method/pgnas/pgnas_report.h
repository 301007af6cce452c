#pragma once
// What PGNAS adds to report.html (report/method_sections.h).
#include "probnas/report/method_sections.h"

namespace probnas {

MethodSections pgnas_report_sections();

}  // namespace probnas
