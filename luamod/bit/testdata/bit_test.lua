-- Lua-side tests for the bit module (LuaBitOp semantics).

local function errmatch(pat, f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error matching " .. pat)
  assert(string.find(err, pat, 1, true), "error " .. tostring(err) .. " does not contain " .. pat)
end

function TestToBit()
  assert(bit.tobit(0) == 0)
  assert(bit.tobit(0xffffffff) == -1)
  assert(bit.tobit(0xffffffff + 1) == 0)
  assert(bit.tobit(0x80000000) == -2147483648)
  assert(bit.tobit(2^40 + 1234) == 1234)
  assert(bit.tobit(-2^40 - 1) == -1)
  assert(bit.tobit(2^70) == 0)
  assert(bit.tobit(1.5) == 2 and bit.tobit(2.5) == 2 and bit.tobit(-1.5) == -2)
  assert(bit.tobit(0/0) == 0 and bit.tobit(1/0) == 0)
  assert(bit.tobit("0x10") == 16)
end

function TestLogic()
  assert(bit.band(0xff00, 0x0ff0) == 0x0f00)
  assert(bit.band(0x12345678, 0xff) == 0x78)
  assert(bit.band(-1, 0xffffffff) == -1)
  assert(bit.band(7) == 7)
  assert(bit.bor(1, 2, 4, 8) == 15)
  assert(bit.bor(0x80000000, 0) == -2147483648)
  assert(bit.bxor(1, 2, 3, 4) == 4)
  assert(bit.bxor(0xaaaaaaaa, 0x55555555) == -1)
  assert(bit.bnot(0) == -1)
  assert(bit.bnot(-1) == 0)
  assert(bit.bnot(0x0f0f0f0f) == bit.tobit(0xf0f0f0f0))
  assert(bit.band("0xff", 15) == 15)
end

function TestShifts()
  assert(bit.lshift(1, 0) == 1)
  assert(bit.lshift(1, 8) == 256)
  assert(bit.lshift(1, 31) == -2147483648)
  assert(bit.lshift(1, 32) == 1) -- shift counts are taken modulo 32
  assert(bit.lshift(1, 40) == 256)
  assert(bit.lshift(0x87654321, 4) == 0x76543210)
  assert(bit.rshift(256, 8) == 1)
  assert(bit.rshift(-256, 8) == 16777215)
  assert(bit.rshift(-1, 31) == 1)
  assert(bit.arshift(-256, 8) == -1)
  assert(bit.arshift(0x7fffffff, 30) == 1)
  assert(bit.arshift(0x80000000, 31) == -1)
  assert(bit.rol(0x12345678, 12) == 0x45678123)
  assert(bit.ror(0x12345678, 12) == 0x67812345)
  assert(bit.rol(0x12345678, 0) == 0x12345678)
  assert(bit.ror(1, 1) == -2147483648)
  assert(bit.rol(0x80000000, 1) == 1)
end

function TestBswap()
  assert(bit.bswap(0x12345678) == 0x78563412)
  assert(bit.bswap(0x78563412) == 0x12345678)
  assert(bit.bswap(0x9abcdef0) == bit.tobit(0xf0debc9a))
  assert(bit.bswap(0xff) == bit.tobit(0xff000000))
end

function TestToHex()
  assert(bit.tohex(1) == "00000001")
  assert(bit.tohex(-1) == "ffffffff")
  assert(bit.tohex(0xffffffff) == "ffffffff")
  assert(bit.tohex(-1, -8) == "FFFFFFFF")
  assert(bit.tohex(0xabcd, -4) == "ABCD")
  assert(bit.tohex(0x21, 4) == "0021")
  assert(bit.tohex(0x87654321, 4) == "4321")
  assert(bit.tohex(1, 0) == "")
  assert(bit.tohex(1, 10) == "00000001")
  assert(bit.tohex(2^32 + 0xbeef) == "0000beef")
end

function TestErrors()
  errmatch("bad argument #1 to 'band' (number expected, got no value)", bit.band)
  errmatch("bad argument #2 to 'bor' (number expected, got table)", bit.bor, 1, {})
  errmatch("bad argument #1 to 'tohex' (number expected, got string)", bit.tohex, "xyz")
  errmatch("bad argument #2 to 'tohex' (number expected, got nil)", bit.tohex, 1, nil)
  errmatch("bad argument #2 to 'lshift' (number expected, got no value)", bit.lshift, 1)
end

-- A checksum as binary protocols compute them: XOR of all bytes.
function TestChecksum()
  local sum = 0
  for _, b in ipairs({0x01, 0x02, 0x04, 0x80}) do
    sum = bit.bxor(sum, b)
  end
  assert(sum == 0x87)
  -- a CRC-16/MODBUS of "123456789" is 0x4B37
  local crc = 0xffff
  for i = 1, 9 do
    crc = bit.bxor(crc, string.byte("123456789", i))
    for _ = 1, 8 do
      if bit.band(crc, 1) ~= 0 then
        crc = bit.bxor(bit.rshift(crc, 1), 0xa001)
      else
        crc = bit.rshift(crc, 1)
      end
    end
  end
  assert(crc == 0x4b37, bit.tohex(crc))
end
