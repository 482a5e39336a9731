-- coap-sensor.lua: a CoAP temperature sensor secured with DTLS and a
-- pre-shared key, as constrained devices are provisioned (RFC 7252 §9).
-- The CoAP messages are built by hand with string.pack and bit.
--
--   wirecat simulate scripts/coap-sensor.lua --arg addr=127.0.0.1:5684
--   coap-client-openssl -m get -u sensor-1 -k 'secret!' coaps://127.0.0.1:5684/temperature
--
-- --arg psk=HEX and --arg identity=ID change the key. It answers GET /temperature (text, e.g. "21.5"), GET /.well-known/core (the
-- resource list) and 4.04 to anything else, to every client, until stopped.

local addr = args.addr or "127.0.0.1:5684"
local psk = args.psk or "73656372657421" -- hex of "secret!"
local identity = args.identity or "sensor-1"

local temp = 20 + math.random() * 3

-- CoAP types and codes (class.detail packed as class*32 + detail).
local CON, NON, ACK = 0, 1, 2
local CONTENT, NOT_FOUND, METHOD_NOT_ALLOWED = 0x45, 0x84, 0x85
local GET = 0x01
local URI_PATH, CONTENT_FORMAT = 11, 12

-- parse reads a request: type, code, message id, token and its Uri-Path
-- ("temperature", ".well-known/core"); nil for what is not CoAP 1.
local function parse(msg)
  if #msg < 4 then return nil end
  local b0, code, mid = string.unpack(">B B I2", msg)
  if bit.rshift(b0, 6) ~= 1 then return nil end
  local typ, tkl = bit.band(bit.rshift(b0, 4), 3), bit.band(b0, 0x0f)
  if tkl > 8 or #msg < 4 + tkl then return nil end
  local token = msg:sub(5, 4 + tkl)
  local pos, opt, path = 5 + tkl, 0, {}
  while pos <= #msg do
    local b = msg:byte(pos)
    if b == 0xff then break end -- the payload follows
    pos = pos + 1
    local delta, len = bit.rshift(b, 4), bit.band(b, 0x0f)
    -- 13 and 14 extend a nibble by one or two bytes (15 is reserved).
    if delta == 13 then delta = msg:byte(pos) + 13; pos = pos + 1
    elseif delta == 14 then delta = string.unpack(">I2", msg, pos) + 269; pos = pos + 2
    elseif delta == 15 then return nil end
    if len == 13 then len = msg:byte(pos) + 13; pos = pos + 1
    elseif len == 14 then len = string.unpack(">I2", msg, pos) + 269; pos = pos + 2
    elseif len == 15 then return nil end
    opt = opt + delta
    if opt == URI_PATH then path[#path + 1] = msg:sub(pos, pos + len - 1) end
    pos = pos + len
  end
  return { type = typ, code = code, mid = mid, token = token, path = table.concat(path, "/") }
end

-- reply builds the response: piggybacked on an ACK for a confirmable
-- request, a NON (with the same message id) for a non-confirmable one.
local function reply(req, code, payload)
  local typ = req.type == CON and ACK or NON
  local head = string.pack(">B B I2", 0x40 + typ * 16 + #req.token, code, req.mid) .. req.token
  if not payload then return head end
  -- Content-Format 0 (text/plain) or 40 (link-format): one option, delta 12.
  local format = req.path == ".well-known/core" and string.pack("B B", CONTENT_FORMAT * 16 + 1, 40)
    or string.pack("B", CONTENT_FORMAT * 16)
  return head .. format .. "\255" .. payload -- 0xff: the payload marker
end

local function answer(req)
  if req.code ~= GET then return reply(req, METHOD_NOT_ALLOWED) end
  if req.path == "temperature" then
    temp = temp + (math.random() - 0.5) * 0.2
    return reply(req, CONTENT, string.format("%.1f", temp))
  elseif req.path == ".well-known/core" then
    return reply(req, CONTENT, '</temperature>;rt="temperature";ct=0')
  end
  return reply(req, NOT_FOUND)
end

local server = assert(net.listen("dtls://" .. addr, { psk = psk, psk_identity = identity }, function(conn)
  -- One DTLS association per client; each record is one CoAP message.
  while true do
    local msg = conn:recv()
    if not msg then return end
    local req = parse(msg)
    if req and req.type <= NON then
      log.info(string.format("%s GET /%s", conn:peer(), req.path))
      conn:send(answer(req))
    end
  end
end))
log.info("coaps://" .. server:addr() .. " (psk identity " .. identity .. ")")
