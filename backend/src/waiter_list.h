// waiter_list.h — a task's parked reads (TaskState::waiters): linked both ways, the head's
// `prev` naming the tail, so that a read is looked for from both ends at once. Reads are
// cancelled in the order they came (a client's calls, a stream's) or the reverse far more
// often than in any other: looked for from the head alone, 50,000 reads of one task
// cancelled in order took 6 s (each search went the whole list). Walks that wake every
// reader follow `next` from the head, as before. REQUIRES: the task's lock.
#pragma once

#include "turbine/internal/engine_api.h"

namespace turbine::internal {

// PushWaiter puts `waiter` first.
inline void PushWaiter(Waiter*& head, Waiter* waiter) {
  waiter->next = head;
  waiter->prev = head != nullptr ? head->prev : waiter;
  if (head != nullptr) head->prev = waiter;
  head = waiter;
}

// RemoveWaiter takes out and returns the waiter `is` accepts, looking from both ends; null
// if there is none.
template <class Is>
Waiter* RemoveWaiter(Waiter*& head, Is is) {
  if (head == nullptr) return nullptr;
  Waiter* found = nullptr;
  for (Waiter *front = head, *back = head->prev;; front = front->next, back = back->prev) {
    if (is(front)) {
      found = front;
    } else if (back != front && is(back)) {
      found = back;
    }
    if (found != nullptr || back == front || front->next == back) break;
  }
  if (found == nullptr) return nullptr;
  Waiter* const tail = head->prev;
  if (found == head) {
    head = found->next;
    if (head != nullptr) head->prev = tail;
  } else {
    found->prev->next = found->next;
    if (found->next != nullptr) {
      found->next->prev = found->prev;
    } else {
      head->prev = found->prev;  // it was the tail
    }
  }
  found->next = nullptr;
  found->prev = nullptr;
  return found;
}

}  // namespace turbine::internal
