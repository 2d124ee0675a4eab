// The supervisor: it hears of each child's failure on the child's own loop, counts it against the
// restart intensity, and restarts the children its strategy names, or gives up (to its own supervisor,
// or to whoever joins it).
#include "cohort/supervisor.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <mutex>
#include <vector>

#include "cohort/log.hpp"

namespace cohort {

namespace detail {

namespace {

std::string default_supervisor_name() {
  static std::atomic<unsigned> counter{0};
  return fmt::format("Supervisor-{}", ++counter);
}

}  // namespace

class SupervisorCore final : public ChildWatcher, public SupervisedChild, public std::enable_shared_from_this<SupervisorCore> {
 public:
  explicit SupervisorCore(SupervisorOptions options)
      : options_(std::move(options)),
        name_(options_.name.empty() ? default_supervisor_name() : options_.name),
        done_(std::make_shared<FutureState<void>>()) {}

  const SupervisorOptions& options() const noexcept { return options_; }
  const std::string& child_name() const noexcept override { return name_; }
  const std::shared_ptr<FutureState<void>>& done() const noexcept { return done_; }
  bool failed() const noexcept {
    std::lock_guard lock(mutex_);
    return static_cast<bool>(failure_);
  }

  void add(std::shared_ptr<SupervisedChild> child) {
    std::lock_guard lock(mutex_);
    children_.push_back(std::move(child));
  }
  void set_parent(std::weak_ptr<ChildWatcher> parent) { parent_ = std::move(parent); }

  void child_failed(SupervisedChild& child, std::exception_ptr why) noexcept override {
    std::vector<std::shared_ptr<SupervisedChild>> affected;
    bool give_up = false;
    bool stopping = false;
    std::size_t restarts = 0;
    {
      std::lock_guard lock(mutex_);
      stopping = stopped_;
      if (!stopping) {
        const auto now = Clock::now();
        restarts_.push_back(now);
        while (!restarts_.empty() && now - restarts_.front() > options_.within) restarts_.pop_front();
        restarts = restarts_.size();
        if (restarts > static_cast<std::size_t>(std::max(options_.max_restarts, 0))) {
          give_up = true;
          stopped_ = true;
          failure_ = why;
        } else {
          const auto failed = std::find_if(children_.begin(), children_.end(),
                                           [&](const auto& each) { return each.get() == &child; });
          for (auto it = children_.begin(); it != children_.end(); ++it) {
            const bool pick = options_.strategy == RestartStrategy::one_for_all ||
                              it == failed ||
                              (options_.strategy == RestartStrategy::rest_for_one && failed != children_.end() && it > failed);
            if (pick) affected.push_back(*it);
          }
        }
      }
    }
    if (stopping) {
      child.stop_child(false);
      return;
    }
    if (give_up) {
      log_error(fmt::format("supervisor '{}' gives up: '{}' failed ({}), {} restarts within {} ms", name_,
                            child.child_name(), describe_error(why), restarts,
                            std::chrono::duration_cast<std::chrono::milliseconds>(options_.within).count()));
      if (auto parent = parent_.lock()) {
        // The parent decides: it restarts this supervisor (and so every child here) or gives up too.
        parent->child_failed(*this, why);
        return;
      }
      stop_children(false);
      done_->try_set_exception(why);
      return;
    }
    log_warning(fmt::format("supervisor '{}': restarting '{}' after it failed ({}){}", name_, child.child_name(),
                            describe_error(why), affected.size() > 1 ? fmt::format(", with {} siblings", affected.size() - 1) : ""));
    for (const auto& each : affected) each->restart(each.get() != &child);
  }

  /// This supervisor as a child of another: a restart restarts every child and starts counting anew.
  void restart(bool) override {
    std::vector<std::shared_ptr<SupervisedChild>> children;
    {
      std::lock_guard lock(mutex_);
      stopped_ = false;
      failure_ = nullptr;
      restarts_.clear();
      children = children_;
    }
    for (const auto& child : children) child->restart(true);
  }

  void stop_child(bool wait) override { stop(wait); }

  void stop(bool wait) {
    {
      std::lock_guard lock(mutex_);
      stopped_ = true;
    }
    stop_children(wait);
    done_->try_set_value();
  }

 private:
  void stop_children(bool wait) {
    std::vector<std::shared_ptr<SupervisedChild>> children;
    {
      std::lock_guard lock(mutex_);
      children = children_;
    }
    for (auto it = children.rbegin(); it != children.rend(); ++it) (*it)->stop_child(wait);
  }

  const SupervisorOptions options_;
  const std::string name_;
  std::weak_ptr<ChildWatcher> parent_;
  mutable std::mutex mutex_;  // guards what follows
  std::vector<std::shared_ptr<SupervisedChild>> children_;  // in start order
  std::deque<Clock::time_point> restarts_;                   // within the intensity window
  bool stopped_ = false;
  std::exception_ptr failure_;
  std::shared_ptr<FutureState<void>> done_;
};

}  // namespace detail

Supervisor::Supervisor(SupervisorOptions options)
    : core_(std::make_shared<detail::SupervisorCore>(std::move(options))) {}

Supervisor::Supervisor(std::shared_ptr<detail::SupervisorCore> core) : core_(std::move(core)) {}

Supervisor::~Supervisor() {
  if (!core_->done()->done()) core_->stop(true);
}

void Supervisor::adopt(std::shared_ptr<detail::ActorCore> child, bool restart_on_error) {
  child->supervise(core_, restart_on_error);
  core_->add(std::move(child));
}

Supervisor& Supervisor::spawn_supervisor(SupervisorOptions options) {
  if (options.runtime == nullptr) options.runtime = core_->options().runtime;
  auto child = std::make_shared<detail::SupervisorCore>(std::move(options));
  child->set_parent(core_);
  core_->add(child);
  // Owned by this supervisor's list of nested handles, so that the reference returned stays valid.
  nested_.push_back(std::unique_ptr<Supervisor>(new Supervisor(std::move(child))));
  return *nested_.back();
}

Runtime* Supervisor::runtime() const noexcept { return core_->options().runtime; }

void Supervisor::stop() { core_->stop(true); }

void Supervisor::join() {
  core_->done()->wait();
  core_->done()->rethrow_if_failed();
}

task<void> Supervisor::async_join() {
  co_await detail::async_wait_done(core_->done());
  core_->done()->rethrow_if_failed();
}

bool Supervisor::failed() const noexcept { return core_->failed(); }

const std::string& Supervisor::name() const noexcept { return core_->child_name(); }

}  // namespace cohort
