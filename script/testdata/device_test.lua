-- What a device script sees. lua_test.go runs each Test* function in a fresh
-- device: device 2 of 3, seed 7, args name=board rate=5, no TARGET.

function TestDeviceAndArgs()
  assert(device.id == 2 and device.count == 3, device.id .. "/" .. device.count)
  assert(args.name == "board" and tonumber(args.rate) == 5 and args.missing == nil)
  assert(TARGET == nil)
end

function TestStringPack()
  local p = string.pack(">I2 s1", 0x0102, "hi")
  assert(p == "\1\2\2hi", p)
  local n, s, pos = string.unpack(">I2 s1", p)
  assert(n == 258 and s == "hi" and pos == 6)
  assert(("<i2"):pack(-2) == "\254\255", "string methods")
  assert(string.packsize("<i4 d") == 12)
end

function TestBit()
  assert(bit.band(0xff, 0x0f) == 0x0f)
  assert(bit.lshift(1, 31) == -2147483648)
  assert(bit.tohex(255, 2) == "ff")
end

function TestJSON()
  local v = json.decode('{"id":2,"tags":["a",null]}')
  assert(v.id == 2 and v.tags[2] == json.null)
  assert(json.encode({id = device.id, ok = true}) == '{"id":2,"ok":true}')
  assert(not pcall(json.decode, "{"))
end

function TestSandbox()
  -- what reads files, runs commands or ends the process says it needs --lua-unsafe
  for name, f in pairs({dofile = dofile, loadfile = loadfile, require = require,
      execute = os.execute, remove = os.remove, exit = os.exit, getenv = os.getenv,
      io = function() return io.open end}) do
    local ok, err = pcall(f, "x")
    assert(not ok and err:find("not available", 1, true), name)
  end
  assert(type(os.time()) == "number" and type(os.clock()) == "number")
end

function TestRandomFromSeedAndID()
  local first = {math.random(1, 1000000), math.random(1, 1000000), math.random()}
  math.randomseed(7) -- the run's seed: a device starts from (seed, device.id)
  local again = {math.random(1, 1000000), math.random(1, 1000000), math.random()}
  for i = 1, 3 do
    assert(first[i] == again[i], "draw " .. i .. " differs after reseeding with the run's seed")
  end
  math.randomseed(8)
  assert(math.random(1, 1000000) ~= first[1], "another seed draws the same")
end

function TestRandomRanges()
  for _ = 1, 200 do
    local f, d, r = math.random(), math.random(6), math.random(-2, 2)
    assert(f >= 0 and f < 1, f)
    assert(d >= 1 and d <= 6 and d % 1 == 0, d)
    assert(r >= -2 and r <= 2 and r % 1 == 0, r)
  end
  assert(not pcall(math.random, 0), "an empty interval accepted")
  assert(not pcall(math.random, 3, 2), "an empty interval accepted")
end

-- RandomDraws is no test: lua_test.go runs it in several devices and
-- compares what they print.
function RandomDraws()
  print(math.random(1, 1000000000), math.random(1, 1000000000), math.random())
end
