// How esbctl prints results: messages as one JSON object (--json).
#ifndef ESB_CLIENT_OUTPUT_H_
#define ESB_CLIENT_OUTPUT_H_

#include "google/protobuf/message.h"

namespace esb::client {

// Prints `message` on stdout as indented JSON with proto field names and
// every field; returns the exit status (1 when it cannot be rendered).
int PrintJson(const google::protobuf::Message& message);

}  // namespace esb::client

#endif  // ESB_CLIENT_OUTPUT_H_
