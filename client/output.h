// How esbctl prints results (messages as one JSON object for --json) and
// errors, with its exit statuses.
#ifndef ESB_CLIENT_OUTPUT_H_
#define ESB_CLIENT_OUTPUT_H_

#include "absl/status/status.h"
#include "google/protobuf/message.h"

namespace esb::client {

// Prints `message` on stdout as indented JSON with proto field names and
// every field; returns the exit status (1 when it cannot be rendered).
int PrintJson(const google::protobuf::Message& message);

// A mistake in the command line: prints it on stderr, returns exit status 2.
int Usage(const absl::Status& status);
// A failure while running: prints it on stderr, returns exit status 1.
int Fail(const absl::Status& status);

}  // namespace esb::client

#endif  // ESB_CLIENT_OUTPUT_H_
