// PLACEHOLDER while the interpreter is written: only the fallback template renders.
#include "serve/chat_template.h"

#include "core/error.h"

namespace tfm::serve {

struct ChatTemplate::Program {
  bool fallback = false;
};

ChatTemplate ChatTemplate::parse(const std::string&) { fail("chat template: not implemented yet"); }

const ChatTemplate& ChatTemplate::fallback() {
  static const ChatTemplate t(std::make_shared<const Program>(Program{true}));
  return t;
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                 const std::string&, const std::string&) const {
  std::string out;
  for (const ChatMessage& m : messages) out += m.role + ": " + m.content + "\n";
  if (add_generation_prompt) out += "assistant:";
  return out;
}

std::optional<ChatTemplate> load_chat_template(const std::string&) { return std::nullopt; }

}  // namespace tfm::serve
