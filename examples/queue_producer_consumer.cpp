// A producer process puts numbers into a Queue and a consumer process takes them out until it meets the
// sentinel (Python's classic multiprocessing.Queue example). The queue holds at most three items, so the
// producer waits whenever it is three ahead; the consumer sends its total back over a second queue.
#include <cohort/cohort.hpp>

#include <cstdio>

constexpr int sentinel = -1;

void producer(cohort::Queue<int> q, int count) {
  for (int i = 1; i <= count; ++i) {
    q.put(i * i);
    std::printf("producer: put %d\n", i * i);
  }
  q.put(sentinel);
  std::printf("producer: put the sentinel\n");
}

void consumer(cohort::Queue<int> q, cohort::Queue<long> total) {
  long sum = 0;
  int count = 0;
  for (int item = q.get(); item != sentinel; item = q.get()) {
    std::printf("consumer: got %d\n", item);
    sum += item;
    ++count;
  }
  std::printf("consumer: saw the sentinel after %d items\n", count);
  total.put(sum);
}

int main(int argc, char** argv) {
  cohort::init(argc, argv);
  cohort::Queue<int> q(/*maxsize=*/3);
  cohort::Queue<long> total;
  cohort::Process c(consumer, q, total);
  cohort::Process p(producer, q, 10);
  c.start();
  p.start();
  p.join();
  c.join();
  std::printf("sum of the first 10 squares: %ld\n", total.get());
  std::printf("exit codes: producer %d, consumer %d\n", *p.exitcode(), *c.exitcode());
  std::printf("left in the queue: %zu\n", q.qsize());
}
