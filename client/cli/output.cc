#include "output.h"

#include <absl/status/status.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>
#include <google/protobuf/descriptor.h>

#include "turbine/client/json.h"

namespace turbine::cli {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

nlohmann::json FieldToJson(const Message& message, const FieldDescriptor* field, int index) {
  const Reflection* r = message.GetReflection();
  // index < 0: a singular field; otherwise element `index` of a repeated one.
  const bool repeated = index >= 0;
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return repeated ? r->GetRepeatedInt32(message, field, index) : r->GetInt32(message, field);
    case FieldDescriptor::CPPTYPE_INT64:
      return repeated ? r->GetRepeatedInt64(message, field, index) : r->GetInt64(message, field);
    case FieldDescriptor::CPPTYPE_UINT32:
      return repeated ? r->GetRepeatedUInt32(message, field, index)
                      : r->GetUInt32(message, field);
    case FieldDescriptor::CPPTYPE_UINT64:
      return repeated ? r->GetRepeatedUInt64(message, field, index)
                      : r->GetUInt64(message, field);
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return repeated ? r->GetRepeatedDouble(message, field, index)
                      : r->GetDouble(message, field);
    case FieldDescriptor::CPPTYPE_FLOAT:
      return repeated ? r->GetRepeatedFloat(message, field, index) : r->GetFloat(message, field);
    case FieldDescriptor::CPPTYPE_BOOL:
      return repeated ? r->GetRepeatedBool(message, field, index) : r->GetBool(message, field);
    case FieldDescriptor::CPPTYPE_ENUM:
      return (repeated ? r->GetRepeatedEnum(message, field, index) : r->GetEnum(message, field))
          ->name();
    case FieldDescriptor::CPPTYPE_STRING:
      return repeated ? r->GetRepeatedString(message, field, index)
                      : r->GetString(message, field);
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      const Message& sub = repeated ? r->GetRepeatedMessage(message, field, index)
                                    : r->GetMessage(message, field);
      if (const auto* value = dynamic_cast<const v1::Value*>(&sub)) {
        return client::ValueToJson(*value);
      }
      return MessageToJson(sub);
    }
  }
  return nullptr;
}

std::string ScalarText(const nlohmann::json& json) {
  return json.is_string() ? json.get<std::string>() : Dump(json);
}

}  // namespace

std::string Dump(const nlohmann::json& json) {
  return json.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
}

std::string_view SourceName(v1::Source source) {
  switch (source) {
    case v1::SOURCE_MEMORY:
      return "memory";
    case v1::SOURCE_DISK:
      return "disk";
    case v1::SOURCE_EXECUTED:
      return "executed";
    case v1::SOURCE_SHARED:
      return "shared";
    default:
      return "unspecified";
  }
}

nlohmann::json CallResultJson(const client::CallResult& result) {
  nlohmann::json json = nlohmann::json::object();
  if (result.value.ok()) {
    json["value"] = client::ValueToJson(*result.value);
  } else {
    json["error"] = std::string(result.value.status().message());
    json["code"] = absl::StatusCodeToString(result.value.status().code());
  }
  json["ref"] = {{"$ref", client::FormatRef(result.ref)}};
  json["source"] = SourceName(result.source);
  json["micros"] = result.micros;
  return json;
}

nlohmann::json MessageToJson(const google::protobuf::Message& message) {
  nlohmann::json json = nlohmann::json::object();
  const google::protobuf::Descriptor* descriptor = message.GetDescriptor();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* field = descriptor->field(i);
    if (field->is_repeated()) {
      nlohmann::json array = nlohmann::json::array();
      int size = message.GetReflection()->FieldSize(message, field);
      for (int k = 0; k < size; ++k) array.push_back(FieldToJson(message, field, k));
      json[field->name()] = std::move(array);
    } else {
      json[field->name()] = FieldToJson(message, field, -1);
    }
  }
  return json;
}

std::string FormatFunction(const v1::FunctionInfo& function) {
  std::string text = absl::StrCat(function.name(), "(");
  absl::string_view separator;
  if (!function.receiver_type().empty()) {
    absl::StrAppend(&text, function.receiver_type(), " this");
    separator = ", ";
  }
  for (const v1::Parameter& param : function.params()) {
    absl::StrAppend(&text, separator, param.type(), " ", param.name());
    separator = ", ";
  }
  absl::StrAppend(&text, ") -> ", function.result_type());
  if (!function.description().empty()) absl::StrAppend(&text, "  ", function.description());
  return text;
}

void PrintStats(std::ostream& out, const v1::StatsReply& stats) {
  // Generic over the messages, in .proto order, so a figure added to the protocol shows up
  // here without a change.
  nlohmann::json json = MessageToJson(stats);
  const google::protobuf::Descriptor* descriptor = stats.GetDescriptor();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* field = descriptor->field(i);
    if (field->is_repeated()) continue;
    out << absl::StrFormat("%-18s %s\n", field->name(), ScalarText(json[field->name()]));
  }
  if (stats.functions_size() == 0) return;
  out << "functions:\n";
  const google::protobuf::Descriptor* function_descriptor = v1::FunctionStats::descriptor();
  for (const v1::FunctionStats& function : stats.functions()) {
    nlohmann::json figures = MessageToJson(function);
    std::string line = absl::StrCat("  ", function.name(), " v", function.version());
    for (int i = 0; i < function_descriptor->field_count(); ++i) {
      const std::string& name = function_descriptor->field(i)->name();
      if (name == "name" || name == "version") continue;
      absl::StrAppend(&line, "  ", name, " ", ScalarText(figures[name]));
    }
    out << line << "\n";
  }
}

}  // namespace turbine::cli
