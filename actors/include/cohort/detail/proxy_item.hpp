// `proxy[key]` of the managed containers' proxies (dict, list, array): reads the item with the proxy's
// get and assigns it with its set, each a call to the server.
#pragma once

#include <utility>

namespace cohort::detail {

template <class Container, class Key, class Value>
class ProxyItem {
 public:
  ProxyItem(const Container* container, Key key) : container_(container), key_(std::move(key)) {}

  operator Value() const { return container_->get(key_); }
  const ProxyItem& operator=(Value value) const {
    container_->set(key_, std::move(value));
    return *this;
  }
  /// `d["a"] = d["b"]` copies the value, not the reference.
  const ProxyItem& operator=(const ProxyItem& other) const { return *this = static_cast<Value>(other); }
  ProxyItem(const ProxyItem&) = default;

 private:
  const Container* container_;
  Key key_;
};

}  // namespace cohort::detail
