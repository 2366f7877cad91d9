#include "client/output.h"

#include <iostream>
#include <string>

#include "google/protobuf/util/json_util.h"

namespace esb::client {

int PrintJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  auto status =
      google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    std::cerr << "esbctl: cannot render JSON: " << status.ToString() << "\n";
    return 1;
  }
  std::cout << json;
  return 0;
}

int Usage(const absl::Status& status) {
  std::cerr << "esbctl: " << status.message() << "\n";
  return 2;
}

int Fail(const absl::Status& status) {
  std::cerr << "esbctl: " << status.message() << "\n";
  return 1;
}

}  // namespace esb::client
