-- mqtt-publish.lua: an MQTT 3.1.1 client written with string.pack — CONNECT,
-- wait for CONNACK, PUBLISH a few readings (QoS 0), DISCONNECT.
--
--   mosquitto -p 1883 &  mosquitto_sub -p 1883 -t 'wirecat/#' -v &
--   wirecat simulate scripts/mqtt-publish.lua --connect 127.0.0.1:1883 --count 3
local topic = args.topic or ("wirecat/" .. device.id .. "/temp")
local count = tonumber(args.count) or 5
local interval = tonumber(args.interval) or 1

-- MQTT's "remaining length": 7 bits a byte, high bit set while more follow.
local function varint(n)
  local out = {}
  repeat
    local b = n % 128
    n = math.floor(n / 128)
    if n > 0 then
      b = b + 128
    end
    out[#out + 1] = string.char(b)
  until n == 0
  return table.concat(out)
end

local function packet(kind, body)
  return string.char(kind) .. varint(#body) .. body
end

-- A framer for MQTT packets: fixed header byte, remaining length, body.
local mqtt = {
  decode = function(buf)
    local len, mul, i = 0, 1, 2
    while true do
      local b = buf:byte(i)
      if not b then
        return nil -- the length itself is not all here yet
      end
      len = len + (b % 128) * mul
      mul = mul * 128
      i = i + 1
      if b < 128 then
        break
      end
    end
    if #buf < i - 1 + len then
      return nil
    end
    return buf:sub(1, i - 1 + len), i - 1 + len
  end,
  encode = function(msg)
    return msg -- packets are built whole
  end,
}

local conn, err = net.connect(TARGET, { frame = mqtt })
if not conn then
  error("cannot reach the broker: " .. err)
end

local client = "wirecat-" .. device.id
-- variable header: protocol name, level 4 (3.1.1), flags (clean session), keep-alive 60s
local connect = string.pack(">s2BBI2", "MQTT", 4, 0x02, 60) .. string.pack(">s2", client)
conn:send(packet(0x10, connect))

local ack, err = conn:recv(5)
if not ack then
  error("no CONNACK: " .. err)
end
local kind, _, _, rc = string.unpack("BBBB", ack)
if kind ~= 0x20 or rc ~= 0 then
  error(string.format("broker refused the connection (packet 0x%02x, code %d)", kind, rc))
end

local temp = 20 + math.random() * 5
for i = 1, count do
  temp = temp + (math.random() - 0.5) * 0.4
  conn:send(packet(0x30, string.pack(">s2", topic) .. string.format("%.1f", temp)))
  if i < count then
    sleep(interval)
  end
end
conn:send(packet(0xE0, ""))
conn:close()
