-- The device scheduler and its clock: sleep, now, spawn, every, after.
-- lua_test.go runs each Test* function in a fresh device, which ends the
-- test when nothing it started is left: a test stops what it starts.

function TestSleepWakesInDeadlineOrder()
  local order = {}
  spawn(function() sleep(0.06); order[#order + 1] = "slow" end)
  spawn(function() sleep(0.02); order[#order + 1] = "fast" end)
  spawn(function() order[#order + 1] = "at once" end)
  local t0 = now()
  sleep(0.1)
  assert(now() - t0 >= 0.1, "sleep returned early")
  assert(table.concat(order, ",") == "at once,fast,slow", table.concat(order, ","))
end

function TestSleepZeroLetsOthersRun()
  local ran = false
  spawn(function() ran = true end)
  assert(not ran, "spawn ran before the caller yielded")
  sleep(0)
  assert(ran, "sleep(0) did not let the spawned coroutine run")
end

function TestNowIsSecondsSinceStart()
  local a = now()
  assert(type(a) == "number" and a >= 0 and a < 5, tostring(a))
  sleep(0.01)
  local b = now()
  assert(b - a >= 0.01 and b - a < 5, b - a)
end

function TestSpawnPassesArguments()
  local got
  spawn(function(a, b) got = a .. b end, "x", "y")
  sleep(0)
  assert(got == "xy", got)
end

function TestEveryStopsFromItsCallback()
  local ticks = 0
  every(0.01, function(h)
    ticks = ticks + 1
    if ticks == 3 then h:stop() end
  end)
  sleep(0.12)
  assert(ticks == 3, ticks)
end

function TestEveryPassesItsOwnHandle()
  local seen
  local h
  h = every(0.01, function(arg) seen = arg; arg:stop() end)
  sleep(0.05)
  assert(seen == h, "callback got another handle")
end

function TestEverySkipsATickWhileBusy()
  local calls = 0
  local h = every(0.01, function() calls = calls + 1; sleep(0.3) end)
  sleep(0.06)
  h:stop()
  assert(calls == 1, calls)
end

function TestAfterStoppedNeverFires()
  local fired = {}
  local a = after(0.02, function() fired[#fired + 1] = "a" end)
  local b = after(0.03, function() fired[#fired + 1] = "b" end)
  a:stop()
  a:stop() -- twice is harmless
  sleep(0.08)
  assert(table.concat(fired, ",") == "b", table.concat(fired, ","))
  b:stop() -- after it fired: harmless
end

function TestTimerArguments()
  assert(not pcall(every, 0, function() end), "every(0) accepted")
  assert(not pcall(every, 1), "every without a function accepted")
  assert(not pcall(after, 0.1), "after without a function accepted")
  assert(tostring(after(0, function() end)) == "timer")
end

function TestWaitInsideOwnCoroutineIsAnError()
  local co = coroutine.create(function() sleep(0.01) end)
  local ok, err = coroutine.resume(co)
  assert(not ok and err:find("cannot wait inside coroutine.create/wrap", 1, true), err)
end
