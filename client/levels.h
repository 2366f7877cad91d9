// `esbctl levels`: the level set of an ESB format, for people and scripts.
#ifndef ESB_CLIENT_LEVELS_H_
#define ESB_CLIENT_LEVELS_H_

#include <string>

#include "core/esb/format.h"
#include "esb/v1/report.pb.h"

namespace esb::client {

// Levels ascending (both signs when signed), integer view, codes, largest
// integer and whether the int8/uint8 fast path runs the format exactly.
esb::v1::LevelsReport BuildLevelsReport(const Format& format);

// A human-readable table of the report.
std::string LevelsText(const esb::v1::LevelsReport& report);

}  // namespace esb::client

#endif  // ESB_CLIENT_LEVELS_H_
