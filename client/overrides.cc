#include "client/overrides.h"

#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace esb::client {
namespace {

absl::Status Bad(absl::string_view entry, absl::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat("--override '", entry, "': ", problem));
}

}  // namespace

absl::Status ParseOverrides(absl::string_view text,
                            esb::v1::JobConfig* config) {
  std::set<std::string> nodes;
  for (absl::string_view raw : absl::StrSplit(text, ';', absl::SkipEmpty())) {
    const absl::string_view entry = absl::StripAsciiWhitespace(raw);
    if (entry.empty()) continue;
    std::vector<absl::string_view> parts = absl::StrSplit(entry, ':');
    const std::string node(absl::StripAsciiWhitespace(parts[0]));
    if (node.empty()) return Bad(entry, "names no layer (LAYER:key=value)");
    if (parts.size() < 2) {
      return Bad(entry,
                 absl::StrCat("sets nothing for layer '", node,
                              "'; give key=value, e.g. ", node, ":bits=8"));
    }
    if (!nodes.insert(node).second) {
      return Bad(entry, absl::StrCat("layer '", node,
                                     "' is named twice; put its keys in one "
                                     "entry, e.g. ",
                                     node, ":bits=8:sb=3"));
    }
    esb::v1::LayerOverride* o = config->add_overrides();
    o->set_node(node);
    std::set<std::string> keys;
    for (size_t i = 1; i < parts.size(); ++i) {
      std::vector<std::string> kv = absl::StrSplit(parts[i], '=');
      int value;
      if (kv.size() != 2 ||
          !absl::SimpleAtoi(absl::StripAsciiWhitespace(kv[1]), &value)) {
        return Bad(entry, absl::StrCat("'", parts[i], "' is not key=integer"));
      }
      const std::string key(absl::StripAsciiWhitespace(kv[0]));
      if (!keys.insert(key).second) {
        return Bad(entry, absl::StrCat("key '", key, "' is given twice"));
      }
      if (key == "bits") {
        o->set_bits(value);
      } else if (key == "sb") {
        o->set_sb(value);
      } else if (key == "act_bits") {
        o->set_act_bits(value);
      } else if (key == "act_sb") {
        o->set_act_sb(value);
      } else {
        return Bad(entry, absl::StrCat("key '", key,
                                       "' is unknown; valid: bits, sb, "
                                       "act_bits, act_sb"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace esb::client
