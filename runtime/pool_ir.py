"""The LLVM IR text of gradjit's process-wide thread pool (runtime.pool compiles and drives it).

    void gj_pool_run(ptr task, ptr context, i64 count, i64 threads)
        runs task(context, t) for t in [0, count) on the calling thread and up to threads - 1
        pool workers, and returns when every task has finished.
    i32 gj_pool_start(i64 workers)      starts workers until `workers` exist; returns how many
    void gj_pool_after_fork()           in a fork child: forgets the parent's workers
    i64 gj_pool_stat(i64 what)          0: workers, 1: peak workers running tasks at once,
                                        2: jobs run on the pool, 3: jobs run inline,
                                        4: jobs still to run inline (backing off)

A job is published through `ticket`, an i64 holding (generation << 32 | next task number):
a thread claims task t by compare-and-swap from (g, t) to (g, t + 1), so a claim succeeds
only while job g is the current job and not exhausted. The submitter closes the ticket
(number CLOSED) before it writes the next job's fields and opens it after, so a worker that
read fields of one job and the ticket of another fails its swap. The submitter runs tasks
itself and then waits only for tasks that were claimed (`done` == count): a worker that is
descheduled before it claims anything holds nobody up (pthread_join in the old per-call
fork/join waited for such a thread to be scheduled at all: milliseconds on a busy machine).

When the machine is busy (jobs whose workers were late, see SLACK), the pool backs off to
running jobs inline for a while, so a crowded machine costs no more than one thread would.

Waits spin briefly (SPIN rounds of `pause`, tens of microseconds: the next parallel step of
a kernel usually comes sooner), then block in futex(2): idle workers cost no CPU, which is
what other processes on a shared machine need. One job at a time: a second submitter (another
Python thread, or a task that itself splits) runs its tasks inline on its own thread.
"""
from __future__ import annotations

CLOSED = 0xFFFFFFFF
SPIN = 4000                 # pause rounds before a wait blocks (~30-80 us on x86)
# Backing off when the machine is busy: a job whose submitter, done with its own tasks,
# waited more than twice as long as those took (plus SLACK cycles, ~50 us: a worker's wake-up
# from futex) found its workers descheduled by other processes. STRIKES such jobs in a row
# send the next BACKOFF jobs inline (one thread, no waiting on anyone); BACKOFF doubles on
# each retreat up to BACKOFF_MAX and goes back to BACKOFF_MIN after one job that paid off.
SLACK = 150_000
STRIKES = 2
BACKOFF_MIN, BACKOFF_MAX = 16, 4096
FUTEX_WAIT, FUTEX_WAKE = 128, 129      # the _PRIVATE variants: one process
SYSCALL_FUTEX = {"x86_64": 202, "aarch64": 98}


def pool_ir(arch: str) -> str | None:
    """The pool module for this architecture, or None where futex(2) is not known."""
    futex = SYSCALL_FUTEX.get(arch)
    if futex is None:
        return None
    pause = "call void @llvm.x86.sse2.pause()" if arch == "x86_64" else ""
    pause_decl = "declare void @llvm.x86.sse2.pause()" if arch == "x86_64" else ""
    return _TEMPLATE.format(futex=futex, pause=pause, pause_decl=pause_decl, spin=SPIN,
                            closed=CLOSED, wait=FUTEX_WAIT, wake=FUTEX_WAKE, slack=SLACK,
                            strikes=STRIKES, backoff_min=BACKOFF_MIN, backoff_max=BACKOFF_MAX)


_TEMPLATE = r"""
@ticket = internal global i64 0, align 64
@job_task = internal global ptr null, align 64
@job_ctx = internal global ptr null
@job_count = internal global i64 0
@job_threads = internal global i64 0
@done = internal global i32 0, align 64
@caller_waiting = internal global i32 0
@seq = internal global i32 0, align 64
@sleepers = internal global i32 0
@busy = internal global i32 0, align 64
@workers = internal global i64 0
@running = internal global i64 0, align 64
@peak = internal global i64 0
@jobs = internal global i64 0
@inline_jobs = internal global i64 0
@strikes = internal global i64 0
@backoff = internal global i64 {backoff_min}
@backoff_left = internal global i64 0

declare i64 @syscall(i64, ...)
declare i64 @llvm.readcyclecounter()
declare i32 @pthread_create(ptr, ptr, ptr, ptr)
declare i32 @pthread_detach(i64)
{pause_decl}

define internal void @futex_wait(ptr %addr, i32 %expected) {{
  %e = zext i32 %expected to i64
  %r = call i64 (i64, ...) @syscall(i64 {futex}, ptr %addr, i64 {wait}, i64 %e, ptr null)
  ret void
}}

define internal void @futex_wake(ptr %addr, i64 %n) {{
  %r = call i64 (i64, ...) @syscall(i64 {futex}, ptr %addr, i64 {wake}, i64 %n)
  ret void
}}

; claims and runs tasks of the current job while the thread (number `me`, the submitter is
; 0) is among the job's threads
define internal void @run_tasks(i64 %me) {{
entry:
  br label %claim
claim:
  %t = load atomic i64, ptr @ticket acquire, align 8
  %idx = and i64 %t, {closed}
  %count = load atomic i64, ptr @job_count monotonic, align 8
  %threads = load atomic i64, ptr @job_threads monotonic, align 8
  %task = load atomic ptr, ptr @job_task monotonic, align 8
  %ctx = load atomic ptr, ptr @job_ctx monotonic, align 8
  %closed = icmp eq i64 %idx, {closed}
  %member = icmp slt i64 %me, %threads
  %left = icmp slt i64 %idx, %count
  %ok1 = and i1 %member, %left
  %ok2 = xor i1 %closed, true
  %ok = and i1 %ok1, %ok2
  br i1 %ok, label %try, label %out
try:
  %next = add i64 %t, 1
  %pair = cmpxchg ptr @ticket, i64 %t, i64 %next seq_cst seq_cst
  %won = extractvalue {{ i64, i1 }} %pair, 1
  br i1 %won, label %run, label %claim
run:
  call void %task(ptr %ctx, i64 %idx)
  %d0 = atomicrmw add ptr @done, i32 1 seq_cst
  %d = add i32 %d0, 1
  %d64 = zext i32 %d to i64
  %last = icmp eq i64 %d64, %count
  br i1 %last, label %notify, label %claim
notify:
  %w = load atomic i32, ptr @caller_waiting seq_cst, align 4
  %asleep = icmp ne i32 %w, 0
  br i1 %asleep, label %wake, label %claim
wake:
  call void @futex_wake(ptr @done, i64 1)
  br label %claim
out:
  ret void
}}

define internal void @note_running(i64 %delta) {{
  %r0 = atomicrmw add ptr @running, i64 %delta seq_cst
  %r = add i64 %r0, %delta
  %p = load atomic i64, ptr @peak monotonic, align 8
  %more = icmp sgt i64 %r, %p
  br i1 %more, label %raise, label %done
raise:
  %x = atomicrmw max ptr @peak, i64 %r seq_cst
  br label %done
done:
  ret void
}}

define internal ptr @worker(ptr %arg) {{
entry:
  %me = ptrtoint ptr %arg to i64
  %s00 = load atomic i32, ptr @seq acquire, align 4
  %s0 = sub i32 %s00, 1           ; as if a job were new: one published before this thread
  br label %wait                  ; started is joined (run_tasks returns if there is none)
wait:
  %seen = phi i32 [ %s0, %entry ], [ %s, %work ], [ %s, %blocked ]
  br label %spin
spin:
  %i = phi i64 [ 0, %wait ], [ %i1, %spin_more ]
  %s = load atomic i32, ptr @seq acquire, align 4
  %new = icmp ne i32 %s, %seen
  br i1 %new, label %work, label %spin_more
spin_more:
  {pause}
  %i1 = add i64 %i, 1
  %long = icmp ugt i64 %i1, {spin}
  br i1 %long, label %sleep, label %spin
sleep:
  %z = atomicrmw add ptr @sleepers, i32 1 seq_cst
  %s2 = load atomic i32, ptr @seq seq_cst, align 4
  %same = icmp eq i32 %s2, %seen
  br i1 %same, label %block, label %unsleep
block:
  call void @futex_wait(ptr @seq, i32 %seen)
  br label %unsleep
unsleep:
  %z2 = atomicrmw sub ptr @sleepers, i32 1 seq_cst
  br label %blocked
blocked:
  br label %wait
work:
  call void @note_running(i64 1)
  call void @run_tasks(i64 %me)
  call void @note_running(i64 -1)
  br label %wait
}}

define i32 @gj_pool_start(i64 %want) {{
entry:
  %tid = alloca i64
  br label %check
check:
  %have = load i64, ptr @workers
  %more = icmp slt i64 %have, %want
  br i1 %more, label %start, label %out
start:
  %me = add i64 %have, 1
  %arg = inttoptr i64 %me to ptr
  %rc = call i32 @pthread_create(ptr %tid, ptr null, ptr @worker, ptr %arg)
  %ok = icmp eq i32 %rc, 0
  br i1 %ok, label %started, label %out
started:
  store i64 %me, ptr @workers
  %t = load i64, ptr %tid
  %d = call i32 @pthread_detach(i64 %t)
  br label %check
out:
  %n = load i64, ptr @workers
  %n32 = trunc i64 %n to i32
  ret i32 %n32
}}

define void @gj_pool_after_fork() {{
  store i64 0, ptr @workers
  store i32 0, ptr @busy
  store i32 0, ptr @sleepers
  store i32 0, ptr @caller_waiting
  store i64 0, ptr @running
  ret void
}}

define i64 @gj_pool_stat(i64 %what) {{
  switch i64 %what, label %jobs [ i64 0, label %workers
                                  i64 1, label %peak
                                  i64 3, label %inline
                                  i64 4, label %backoff ]
backoff:
  %b = load atomic i64, ptr @backoff_left seq_cst, align 8
  ret i64 %b
workers:
  %w = load i64, ptr @workers
  ret i64 %w
peak:
  %p = load atomic i64, ptr @peak seq_cst, align 8
  ret i64 %p
inline:
  %n = load atomic i64, ptr @inline_jobs seq_cst, align 8
  ret i64 %n
jobs:
  %j = load atomic i64, ptr @jobs seq_cst, align 8
  ret i64 %j
}}

define void @gj_pool_run(ptr %task, ptr %ctx, i64 %count, i64 %threads) {{
entry:
  %workers = load i64, ptr @workers
  %have = add i64 %workers, 1
  %few = icmp slt i64 %have, %threads
  %n = select i1 %few, i64 %have, i64 %threads
  %one = icmp sle i64 %n, 1
  %single = icmp sle i64 %count, 1
  %alone = or i1 %one, %single
  br i1 %alone, label %inline, label %backing
backing:
  %left = load atomic i64, ptr @backoff_left monotonic, align 8
  %off = icmp sgt i64 %left, 0
  br i1 %off, label %back, label %lock
back:
  %left1 = sub i64 %left, 1
  store atomic i64 %left1, ptr @backoff_left monotonic, align 8
  br label %inline
lock:
  %pair = cmpxchg ptr @busy, i32 0, i32 1 acquire monotonic
  %got = extractvalue {{ i32, i1 }} %pair, 1
  br i1 %got, label %publish, label %inline
inline:
  %ij = atomicrmw add ptr @inline_jobs, i64 1 monotonic
  br label %iloop
iloop:
  %k = phi i64 [ 0, %inline ], [ %k1, %ibody ]
  %more = icmp slt i64 %k, %count
  br i1 %more, label %ibody, label %iout
ibody:
  call void %task(ptr %ctx, i64 %k)
  %k1 = add i64 %k, 1
  br label %iloop
iout:
  ret void
publish:
  %jb = atomicrmw add ptr @jobs, i64 1 monotonic
  %c0 = call i64 @llvm.readcyclecounter()
  %old = load atomic i64, ptr @ticket seq_cst, align 8
  %gen0 = lshr i64 %old, 32
  %gen1 = add i64 %gen0, 1
  %gen = and i64 %gen1, 4294967295
  %base = shl i64 %gen, 32
  %shut = or i64 %base, {closed}
  store atomic i64 %shut, ptr @ticket seq_cst, align 8
  store atomic ptr %task, ptr @job_task monotonic, align 8
  store atomic ptr %ctx, ptr @job_ctx monotonic, align 8
  store atomic i64 %count, ptr @job_count monotonic, align 8
  store atomic i64 %n, ptr @job_threads monotonic, align 8
  store atomic i32 0, ptr @done seq_cst, align 4
  store atomic i64 %base, ptr @ticket seq_cst, align 8
  %s = atomicrmw add ptr @seq, i32 1 seq_cst
  %sl = load atomic i32, ptr @sleepers seq_cst, align 4
  %anyone = icmp sgt i32 %sl, 0
  br i1 %anyone, label %wake, label %mine
wake:
  call void @futex_wake(ptr @seq, i64 2147483647)
  br label %mine
mine:
  call void @run_tasks(i64 0)
  %c1 = call i64 @llvm.readcyclecounter()
  br label %spin
spin:
  %i = phi i64 [ 0, %mine ], [ %i1, %spin_more ], [ 0, %blocked ]
  %d = load atomic i32, ptr @done acquire, align 4
  %d64 = zext i32 %d to i64
  %all = icmp eq i64 %d64, %count
  br i1 %all, label %finish, label %spin_more
spin_more:
  {pause}
  %i1 = add i64 %i, 1
  %long = icmp ugt i64 %i1, {spin}
  br i1 %long, label %sleep, label %spin
sleep:
  store atomic i32 1, ptr @caller_waiting seq_cst, align 4
  %d2 = load atomic i32, ptr @done seq_cst, align 4
  %d264 = zext i32 %d2 to i64
  %all2 = icmp eq i64 %d264, %count
  br i1 %all2, label %woken, label %block
block:
  call void @futex_wait(ptr @done, i32 %d2)
  br label %woken
woken:
  store atomic i32 0, ptr @caller_waiting seq_cst, align 4
  br label %blocked
blocked:
  br label %spin
finish:
  %c2 = call i64 @llvm.readcyclecounter()
  %own = sub i64 %c1, %c0
  %waited = sub i64 %c2, %c1
  %own2 = shl i64 %own, 1
  %limit = add i64 %own2, {slack}
  %late = icmp ugt i64 %waited, %limit
  br i1 %late, label %strike, label %good
good:
  store i64 0, ptr @strikes
  store i64 {backoff_min}, ptr @backoff
  br label %unlock
strike:
  %st0 = load i64, ptr @strikes
  %st = add i64 %st0, 1
  store i64 %st, ptr @strikes
  %out = icmp sge i64 %st, {strikes}
  br i1 %out, label %retreat, label %unlock
retreat:
  store i64 0, ptr @strikes
  %bo = load i64, ptr @backoff
  store atomic i64 %bo, ptr @backoff_left monotonic, align 8
  %bo2 = shl i64 %bo, 1
  %cap = icmp ugt i64 %bo2, {backoff_max}
  %bo3 = select i1 %cap, i64 {backoff_max}, i64 %bo2
  store i64 %bo3, ptr @backoff
  br label %unlock
unlock:
  store atomic i32 0, ptr @busy release, align 4
  ret void
}}
"""
