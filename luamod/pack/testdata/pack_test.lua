-- Lua-side tests for string.pack, string.unpack and string.packsize.
local pack, unpack, packsize = string.pack, string.unpack, string.packsize

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function errmatch(pat, f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error matching " .. pat)
  assert(string.find(err, pat, 1, true), "error " .. tostring(err) .. " does not contain " .. pat)
end

function TestIntegerRoundTrips()
  local cases = {
    {"b", -128}, {"b", 127}, {"B", 0}, {"B", 255},
    {"h", -32768}, {"h", 32767}, {"H", 65535},
    {"i", -2147483648}, {"i", 2147483647}, {"I", 4294967295},
    {"i3", -8388608}, {"I3", 16777215}, {"i5", -549755813888}, {"I7", 2^53},
    {"l", -9007199254740992}, {"L", 9007199254740992},
    {"j", -1}, {"J", 2^53}, {"T", 12345}, {"i8", -(2^63)}, {"I8", 2^63},
    {"i16", -5}, {"I16", 5}, {"i12", 2^60}, {"I1", 7}, {"i2", -2},
  }
  for _, c in ipairs(cases) do
    for _, endian in ipairs({"<", ">", "="}) do
      local f = endian .. c[1]
      local s = pack(f, c[2])
      assert(#s == packsize(f), f)
      local v, pos = unpack(f, s)
      assert(v == c[2], f .. ": got " .. tostring(v) .. " want " .. tostring(c[2]))
      assert(pos == #s + 1, f)
    end
  end
end

function TestFloatRoundTrips()
  for _, f in ipairs({"<d", ">d", "<n", ">n"}) do
    for _, v in ipairs({0, -0.5, 3.141592653589793, 1e300, -1e-300, 1/0, -1/0}) do
      assert(unpack(f, pack(f, v)) == v, f)
    end
    local nan = unpack(f, pack(f, 0/0))
    assert(nan ~= nan)
  end
  assert(unpack("<f", pack("<f", 0.5)) == 0.5)
  assert(unpack(">f", pack(">f", -1.25)) == -1.25)
  -- float32 rounds
  local v = unpack("f", pack("f", 0.1))
  assert(v ~= 0.1 and math.abs(v - 0.1) < 1e-7)
  assert(hex(pack(">f", 1)) == "3f800000")
  assert(hex(pack("<d", 1)) == "000000000000f03f")
end

function TestEndianness()
  assert(pack(">I2", 0x0102) == "\1\2")
  assert(pack("<I2", 0x0102) == "\2\1")
  assert(pack(">i4", -2) == "\255\255\255\254")
  assert(pack("<i4", -2) == "\254\255\255\255")
  assert(pack("=I2", 1) == pack("<I2", 1)) -- native is little endian on supported hosts
  assert(pack(">I3 <I3", 0x010203, 0x010203) == "\1\2\3\3\2\1")
  assert(hex(pack(">j", -1)) == "ffffffffffffffff")
  assert(hex(pack(">I16", 1)) == string.rep("00", 15) .. "01")
  assert(hex(pack("<i16", -1)) == string.rep("ff", 16))
  assert(unpack(">I2", "\1\2") == 258)
end

function TestSizes()
  local sizes = {b=1, B=1, h=2, H=2, i=4, I=4, l=8, L=8, j=8, J=8, T=8, f=4, d=8, n=8,
    i1=1, i7=7, I9=9, i16=16, x=1, c10=10, c0=0, [""]=0, [" "]=0, ["<>=!"]=0}
  for f, n in pairs(sizes) do
    assert(packsize(f) == n, f .. " size " .. packsize(f))
  end
  assert(packsize("!8 b d") == 16)
  assert(packsize("b Xd") == 1) -- X aligns only with '!'
  assert(packsize("!b Xd") == 8)
end

function TestAlignment()
  assert(packsize("!bi") == 8)
  assert(packsize("!2bi") == 6)
  assert(packsize("!4 b h") == 4)
  assert(packsize("!b i8") == 16)
  assert(packsize("!4 b i8") == 12)
  assert(packsize("!1 b i8") == 9)
  assert(packsize("!16 b i16") == 32)
  assert(packsize("! b c3 i") == 8) -- c is never aligned; i is
  local s = pack("!<b i4", 1, 2)
  assert(s == "\1\0\0\0\2\0\0\0", hex(s))
  local a, b, pos = unpack("!<b i4", s)
  assert(a == 1 and b == 2 and pos == 9)
  -- X aligns to the size of the following option without packing it
  s = pack("!4 b Xi4 b", 1, 2)
  assert(s == "\1\0\0\0\2", hex(s))
  assert(unpack("!4 b Xi4 b", s, 1) == 1)
  assert(select(2, unpack("!4 b Xh b", s)) == 0)
  -- alignment in unpack is relative to the start of the data, not of init
  assert(select(2, unpack("!4 i4", "\0\0\0\0\7\0\0\0", 2)) == 9)
  errmatch("format asks for alignment not power of 2", packsize, "!4 i3")
  errmatch("format asks for alignment not power of 2", pack, "!8 b i6", 1, 2)
  errmatch("invalid next option for option 'X'", packsize, "X")
  errmatch("invalid next option for option 'X'", packsize, "Xc1")
  errmatch("invalid next option for option 'X'", packsize, "Xz")
  errmatch("invalid next option for option 'X'", packsize, "X<")
end

function TestStrings()
  for _, n in ipairs({1, 2, 4, 8}) do
    for _, v in ipairs({"", "a", "hello\0world", string.rep("x", 255)}) do
      local f = "<s" .. n
      local s = pack(f, v)
      assert(#s == n + #v)
      local got, pos = unpack(f, s)
      assert(got == v and pos == #s + 1)
    end
  end
  assert(pack(">s2", "ab") == "\0\2ab")
  assert(pack("s1", "") == "\0")
  assert(#pack("s", "abc") == 11)
  errmatch("bad argument #2 to 'pack' (string length does not fit in given size)", pack, "s1", string.rep("x", 256))
  assert(pack("z", "abc") == "abc\0")
  assert(unpack("z", "abc\0def") == "abc")
  assert(select(2, unpack("z", "abc\0def")) == 5)
  assert(unpack("zz", "a\0b\0") == "a")
  errmatch("bad argument #2 to 'pack' (string contains zeros)", pack, "z", "a\0b")
  errmatch("bad argument #2 to 'unpack' (unfinished string for format 'z')", unpack, "z", "abc")
  assert(pack("c5", "ab") == "ab\0\0\0")
  assert(unpack("c2", "abc") == "ab")
  assert(pack("c0", "") == "")
  errmatch("bad argument #2 to 'pack' (string longer than given size)", pack, "c2", "abc")
  errmatch("missing size for format option 'c'", pack, "c", "a")
  errmatch("bad argument #2 to 'unpack' (data string too short)", unpack, "s1", "\5abc")
  -- numbers are accepted where strings are expected, as in Lua
  assert(pack("z", 12) == "12\0")
end

function TestPadding()
  assert(pack("xBx", 7) == "\0\7\0")
  assert(select("#", unpack("xBx", "\0\7\0")) == 2)
  assert(unpack("xxB", "\0\0\9") == 9)
end

function TestNegativeNumbers()
  assert(pack("b", -1) == "\255")
  assert(pack("<h", -2) == "\254\255")
  assert(unpack("b", "\255") == -1)
  assert(unpack("B", "\255") == 255)
  assert(unpack("<i3", "\255\255\255") == -1)
  assert(unpack("<I3", "\255\255\255") == 16777215)
  assert(unpack("<j", string.rep("\255", 8)) == -1)
  -- unsigned 8-byte options take negatives as two's complement and unpack unsigned
  assert(pack("<J", -1) == string.rep("\255", 8))
  assert(unpack("<J", pack("<J", -1)) == 2^64)
  assert(pack("<I9", -1) == string.rep("\255", 8) .. "\0") -- zero-extended, as in Lua 5.3
  assert(unpack("<I9", pack("<I9", -1)) == 2^64)
end

function TestOverflow()
  errmatch("bad argument #2 to 'pack' (integer overflow)", pack, "b", 128)
  errmatch("bad argument #2 to 'pack' (integer overflow)", pack, "b", -129)
  errmatch("bad argument #3 to 'pack' (integer overflow)", pack, "b h", 1, 32768)
  errmatch("bad argument #2 to 'pack' (integer overflow)", pack, "i4", 2^31)
  errmatch("bad argument #2 to 'pack' (number has no integer representation)", pack, "j", 2^63)
  errmatch("bad argument #2 to 'pack' (number has no integer representation)", pack, "i16", 2^63)
  errmatch("bad argument #2 to 'pack' (number has no integer representation)", pack, "b", 1e300)
  errmatch("bad argument #2 to 'pack' (unsigned overflow)", pack, "B", 256)
  errmatch("bad argument #2 to 'pack' (unsigned overflow)", pack, "B", -1)
  errmatch("bad argument #2 to 'pack' (unsigned overflow)", pack, "I4", 2^32)
  errmatch("bad argument #2 to 'pack' (number has no integer representation)", pack, "J", 2^64)
  errmatch("bad argument #2 to 'pack' (number has no integer representation)", pack, "i", 1.5)
  errmatch("bad argument #2 to 'pack' (number has no integer representation)", pack, "i", 1/0)
  errmatch("bad argument #2 to 'pack' (number has no integer representation)", pack, "i", 0/0)
  errmatch("bad argument #2 to 'pack' (number expected, got no value)", pack, "i")
  errmatch("bad argument #2 to 'pack' (number expected, got table)", pack, "d", {})
  errmatch("bad argument #2 to 'pack' (string expected, got nil)", pack, "z", nil)
  assert(pack("i", "12") == pack("i", 12)) -- numeric strings convert
  -- 9..16 byte integers must fit in 64 bits when unpacked
  errmatch("9-byte integer does not fit into Lua Integer", unpack, "<i9", "\0\0\0\0\0\0\0\0\1")
  errmatch("9-byte integer does not fit into Lua Integer", unpack, "<I9", string.rep("\255", 9))
  assert(unpack("<i9", string.rep("\255", 9)) == -1)
end

function TestUnpackPositions()
  local s = pack("<i2 i2 i2", 1, 2, 3)
  local a, pos = unpack("<i2", s)
  assert(a == 1 and pos == 3)
  a, pos = unpack("<i2", s, pos)
  assert(a == 2 and pos == 5)
  a, pos = unpack("<i2", s, -2)
  assert(a == 3 and pos == 7)
  assert(select("#", unpack("", s, 7)) == 1)
  assert(unpack("", s, 7) == 7)
  errmatch("bad argument #3 to 'unpack' (initial position out of string)", unpack, "b", s, 8)
  errmatch("bad argument #3 to 'unpack' (initial position out of string)", unpack, "b", s, -7)
  errmatch("bad argument #2 to 'unpack' (data string too short)", unpack, "b", s, 7)
  errmatch("bad argument #2 to 'unpack' (data string too short)", unpack, "i4", "abc")
  errmatch("bad argument #3 to 'unpack' (number has no integer representation)", unpack, "b", s, 1.5)
  -- a loop walking a buffer of records
  local buf = pack(">I2 s1 I2 s1", 1, "one", 2, "two")
  local out, p = {}, 1
  while p <= #buf do
    local id, name
    id, name, p = unpack(">I2 s1", buf, p)
    out[#out + 1] = id .. "=" .. name
  end
  assert(table.concat(out, ",") == "1=one,2=two")
end

function TestPacksizeErrors()
  errmatch("bad argument #1 to 'packsize' (variable-length format)", packsize, "s")
  errmatch("bad argument #1 to 'packsize' (variable-length format)", packsize, "i z")
  errmatch("invalid format option 'y'", packsize, "y")
  errmatch("invalid format option '9'", pack, "9")
  errmatch("integral size (17) out of limits [1,16]", packsize, "i17")
  errmatch("integral size (0) out of limits [1,16]", packsize, "i0")
  errmatch("integral size (0) out of limits [1,16]", packsize, "!0")
  errmatch("bad argument #1 to 'packsize' (format result too large)", packsize, "c2000000000 c2000000000")
end

function TestManyResults()
  local t = {unpack(string.rep("B", 200), string.rep("\1", 200))}
  assert(#t == 201 and t[200] == 1 and t[201] == 201)
end
