-- net.connect and net.listen, both ends in one device on loopback.
-- lua_test.go runs each Test* function in a fresh device; every wait has a
-- timeout, and each test closes the listeners it opens (a listener keeps
-- its device alive).

-- echo listens on a free loopback port and sends each message back.
local function echo(opts)
  return assert(net.listen("127.0.0.1:0", opts or { frame = "line" }, function(c)
    while true do
      local m = c:recv(2)
      if not m then return end
      c:send(m)
    end
  end))
end

function TestConnectSendRecvClose()
  local srv = echo()
  local c = assert(net.connect(srv:addr(), { frame = "line" }))
  assert(c:peer() == srv:addr(), c:peer())
  assert(c:send("hello") == true)
  assert(c:recv(2) == "hello")
  assert(c:send("a") and c:send("b"))
  local a, b = c:recv(2), c:recv(2)
  assert(a == "a" and b == "b", tostring(a) .. tostring(b))
  c:close()
  local m, err = c:recv(1)
  assert(m == nil and err == "closed", err)
  m, err = c:send("x")
  assert(m == nil and err == "closed", err)
  srv:close()
end

function TestRecvUntil()
  local srv = assert(net.listen("127.0.0.1:0", function(c)
    c:send("HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    c:close()
  end))
  local c = assert(net.connect(srv:addr()))
  local head = assert(c:recv_until("\r\n\r\n", 2))
  assert(head:sub(-4) == "\r\n\r\n" and head:match("Content%-Length: (%d+)") == "5", head)
  local rest = c:recv_until("not there", 2) -- the end of the stream gives the rest
  assert(rest == "hello", rest)
  local m, err = c:recv_until("x", 2)
  assert(m == nil and err == "closed", err)
  c:close()
  srv:close()
end

function TestRecvTimeout()
  local srv = echo()
  local c = assert(net.connect(srv:addr(), { frame = "line" }))
  local t0 = now()
  local m, err = c:recv(0.05)
  assert(m == nil and err == "timeout", err)
  assert(now() - t0 >= 0.05, "timed out early")
  m, err = c:recv(0)
  assert(m == nil and err == "timeout", err)
  assert(c:send("still here")) -- a timeout leaves the connection usable
  assert(c:recv(2) == "still here")
  c:close()
  srv:close()
end

function TestTimersRunWhileRecvWaits()
  local srv = echo()
  local c = assert(net.connect(srv:addr(), { frame = "line" }))
  local ticks = 0
  every(0.01, function(h)
    ticks = ticks + 1
    if ticks == 3 then
      c:send("tick 3")
      h:stop()
    end
  end)
  assert(c:recv(2) == "tick 3") -- only the timer sends it
  c:close()
  srv:close()
end

function TestCloseWhileRecvWaits()
  local srv = echo()
  local c = assert(net.connect(srv:addr(), { frame = "line" }))
  after(0.02, function() c:close() end)
  local m, err = c:recv(2)
  assert(m == nil and err == "closed", err)
  srv:close()
end

function TestConnectRefused()
  local srv = echo()
  local addr = srv:addr()
  srv:close()
  local c, err = net.connect(addr, { timeout = 2 })
  assert(c == nil and err:find("refused"), err)
end

-- len16 frames each message with a 2-byte big-endian length, in Lua.
local len16 = {
  decode = function(buf)
    if #buf < 2 then return nil end
    local n = string.unpack(">I2", buf)
    if #buf < 2 + n then return nil end
    return buf:sub(3, 2 + n), 2 + n
  end,
  encode = function(msg) return string.pack(">s2", msg) end,
}

function TestFramerTable()
  local srv = assert(net.listen("127.0.0.1:0", { frame = len16 }, function(c)
    while true do
      local m = c:recv(2)
      if not m then return end
      c:send(m:upper())
    end
  end))
  local c = assert(net.connect(srv:addr(), { frame = len16 }))
  c:send("one")
  c:send("")
  c:send(("x"):rep(300))
  assert(c:recv(2) == "ONE")
  assert(c:recv(2) == "")
  assert(c:recv(2) == ("X"):rep(300))
  -- bytes arriving in pieces wait in the buffer until decode has a whole message
  local raw = assert(net.connect(srv:addr()))
  raw:send("\0\5he")
  sleep(0.02)
  raw:send("llo\0")
  sleep(0.02)
  raw:send("\2ok")
  assert(raw:recv_until("LLO", 2) == "\0\5HELLO")
  assert(raw:recv_until("OK", 2) == "\0\2OK")
  c:close()
  raw:close()
  srv:close()
end

function TestBadFramerFailsItsConnection()
  local bad = { decode = function(buf) return buf, #buf + 1 end }
  local srv = echo({})
  local c = assert(net.connect(srv:addr(), { frame = bad }))
  c:send("hi")
  local m, err = c:recv(2)
  assert(m == nil and err:find("decode used 3 bytes of the 2", 1, true), err)
  m, err = c:recv(1)
  assert(m == nil and err == "closed", err)
  srv:close()
end

function TestReturningHandlerHangsUp()
  local srv = assert(net.listen("127.0.0.1:0", function(c) c:send("bye") end))
  local c = assert(net.connect(srv:addr()))
  assert(c:recv(2) == "bye")
  local m, err = c:recv(2) -- the handler returned: its end is closed, not left open
  assert(m == nil and err == "closed", err)
  c:close()
  srv:close()
end
