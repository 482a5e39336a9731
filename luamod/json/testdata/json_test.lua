-- Lua-side tests for the json module.

local function errmatch(pat, f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error matching " .. pat)
  assert(string.find(err, pat, 1, true), "error " .. tostring(err) .. " does not contain " .. pat)
end

local function eq(a, b)
  assert(a == b, "got " .. tostring(a) .. ", want " .. tostring(b))
end

function TestScalars()
  eq(json.encode(nil), "null")
  eq(json.encode(json.null), "null")
  eq(json.encode(true), "true")
  eq(json.encode(false), "false")
  eq(json.encode(0), "0")
  eq(json.encode(-12), "-12")
  eq(json.encode(1.5), "1.5")
  eq(json.encode(2^53), "9007199254740992")
  eq(json.encode(1e21), "1e+21")
  eq(json.encode(0.1), "0.1")
  eq(json.encode("hi"), '"hi"')
  eq(json.decode("42"), 42)
  eq(json.decode(" -0.5e1 "), -5)
  eq(json.decode('"x"'), "x")
  eq(json.decode("true"), true)
  eq(json.decode("false"), false)
  eq(json.decode("null"), json.null)
  eq(tostring(json.null), "null")
end

function TestArraysAndObjects()
  eq(json.encode({1, 2, 3}), "[1,2,3]")
  eq(json.encode({"a", {true}}), '["a",[true]]')
  eq(json.encode({a = 1, b = "x"}), '{"a":1,"b":"x"}')
  eq(json.encode({b = 1, a = 2, c = 3, [10] = 4}), '{"10":4,"a":2,"b":1,"c":3}')
  eq(json.encode({}), "{}")
  eq(json.encode(json.array()), "[]")
  eq(json.encode(json.array({})), "[]")
  eq(json.encode(json.array({1, 2})), "[1,2]")
  -- holes make an object, unless the table is marked as an array
  eq(json.encode({[1] = "a", [3] = "c"}), '{"1":"a","3":"c"}')
  eq(json.encode(json.array({[1] = "a", [3] = "c"})), '["a",null,"c"]')
  eq(json.encode({1, 2, x = 3}), '{"1":1,"2":2,"x":3}')
  eq(json.encode({[1.5] = true}), '{"1.5":true}')
  eq(json.encode({[0] = "z"}), '{"0":"z"}')
  eq(json.encode({[-1] = "m"}), '{"-1":"m"}')
end

function TestDecodeStructures()
  local v = json.decode('{"name":"thermo","readings":[21.5,22,null],"ok":true,"meta":{}}')
  eq(v.name, "thermo")
  eq(#v.readings, 3)
  eq(v.readings[1], 21.5)
  eq(v.readings[3], json.null)
  eq(v.ok, true)
  eq(next(v.meta), nil)
  -- keys are strings even when they look like numbers
  local k = json.decode('{"1":"one"}')
  eq(k["1"], "one")
  eq(k[1], nil)
  eq(json.decode("[]")[1], nil)
end

function TestRoundTrip()
  local docs = {
    '{"a":[1,2,{"b":null}],"c":"d"}',
    "[]",
    "{}",
    "[[],{},[[]]]",
    '{"empty":[],"obj":{}}',
    '[1.5,-2,1e-7,"\\u0000",true,false,null]',
    '{"\\"quoted\\"":"\\\\"}',
  }
  for _, doc in ipairs(docs) do
    eq(json.encode(json.decode(doc)), doc)
  end
  local t = {n = 1, list = {1, 2, 3}, nested = {deep = {deeper = "x"}}, flag = false}
  local back = json.decode(json.encode(t))
  eq(back.n, 1)
  eq(back.list[3], 3)
  eq(back.nested.deep.deeper, "x")
  eq(back.flag, false)
end

function TestStrings()
  eq(json.encode('a"b\\c/d'), '"a\\"b\\\\c/d"')
  eq(json.encode("\n\r\t\b\f"), '"\\n\\r\\t\\b\\f"')
  eq(json.encode("\0\1\31"), '"\\u0000\\u0001\\u001f"')
  eq(json.encode("héllo €"), '"héllo €"')
  -- bytes that are not UTF-8 are escaped one by one
  eq(json.encode("\255a\128"), '"\\u00ffa\\u0080"')
  eq(json.decode('"\\u00e9"'), "é")
  eq(json.decode('"\\u20AC"'), "€")
  eq(json.decode('"\\ud83d\\ude00"'), "\240\159\152\128") -- U+1F600 as UTF-8
  eq(json.decode('"\\ud83d"'), "\239\191\189") -- a lone surrogate becomes U+FFFD
  eq(json.decode('"\\ud83dx"'), "\239\191\189x")
  eq(json.decode('"a\\/b"'), "a/b")
  eq(json.decode('"tab\\there"'), "tab\there")
end

function TestEncodeErrors()
  errmatch("json.encode: cannot encode function", json.encode, print)
  errmatch("json.encode: cannot encode function", json.encode, {f = print})
  errmatch("json.encode: cannot encode number nan", json.encode, 0/0)
  errmatch("json.encode: cannot encode number inf", json.encode, 1/0)
  errmatch("json.encode: cannot encode table key of type boolean", json.encode, {[true] = 1})
  errmatch("json.encode: duplicate key \"1\"", json.encode, {[1] = 1, ["1"] = 2, x = 3})
  errmatch("json.encode: array has non-index key \"x\"", json.encode, json.array({x = 1}))
  local t = {}
  t.self = t
  errmatch("json.encode: cycle detected", json.encode, t)
  local a = {}
  a[1] = {a}
  errmatch("json.encode: cycle detected", json.encode, a)
  -- the same table twice is fine when it is not its own ancestor
  local shared = {1}
  eq(json.encode({shared, shared}), "[[1],[1]]")
  errmatch("bad argument #1 to 'encode' (value expected)", json.encode)
  errmatch("json.array: table already has a metatable", json.array, setmetatable({}, {}))
  errmatch("bad argument #1 to 'array' (table expected, got string)", json.array, "x")
end

function TestDecodeErrors()
  errmatch("json.decode: invalid character 'x' looking for beginning of value at offset 5", json.decode, '{"a":x}')
  errmatch("json.decode: unexpected end of input at offset 4", json.decode, '[1,2')
  errmatch("json.decode: invalid character 'x' after top-level value at offset 3", json.decode, '{} x')
  errmatch("json.decode: unexpected end of input at offset 0", json.decode, '')
  errmatch("json.decode: invalid character '}' looking for beginning of value", json.decode, '[1,}')
  errmatch("json.decode: invalid character ']' after object key:value pair", json.decode, '{"a":1]')
  errmatch("json.decode: invalid character '1' looking for beginning of object key string", json.decode, '{1:2}')
  errmatch("invalid character '\\x0a' in string literal", json.decode, '"a\nb"')
  errmatch("invalid escape 'q' in string literal", json.decode, '"\\q"')
  errmatch("invalid character 'g' in \\u escape", json.decode, '"\\u00g0"')
  errmatch("unexpected end of input in string literal", json.decode, '"abc')
  errmatch("unexpected end of input at offset 3", json.decode, 'tru')
  errmatch("invalid character 'x' in literal true at offset 3", json.decode, 'trux')
  errmatch("invalid character 'x' in numeric literal", json.decode, '-x')
  errmatch("cannot encode number -inf", json.encode, -1/0)
  errmatch("after top-level value", json.decode, '01')
  errmatch("invalid character 'x' after decimal point", json.decode, '1.x')
  errmatch("invalid character 'x' in exponent", json.decode, '1e+x')
  errmatch("number 1e999 out of range", json.decode, '1e999')
  errmatch("nesting deeper than 1000", json.decode, string.rep("[", 1001) .. string.rep("]", 1001))
  errmatch("bad argument #1 to 'decode' (string expected, got no value)", json.decode)
  -- 1000 levels is fine
  local deep = json.decode(string.rep("[", 1000) .. string.rep("]", 1000))
  eq(type(deep), "table")
end

function TestDecodeErrorIsCatchable()
  local ok, err = pcall(json.decode, "{bad")
  eq(ok, false)
  assert(err:find("json.decode:", 1, true))
end
