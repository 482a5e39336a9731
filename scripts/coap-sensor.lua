-- coap-sensor.lua: a CoAP temperature sensor secured with DTLS and a
-- pre-shared key, as constrained devices are provisioned (RFC 7252 §9),
-- served by the coap module: a table of routes. It pushes a reading to
-- its observers (RFC 7641) every second.
--
--   wirecat simulate scripts/coap-sensor.lua --arg addr=127.0.0.1:5684
--   coap-client-openssl -m get -u sensor-1 -k 'secret!' coaps://127.0.0.1:5684/temperature
--   coap-client-openssl -m get -u sensor-1 -k 'secret!' -s 3 coaps://127.0.0.1:5684/temperature
--
-- --arg psk=HEX and --arg identity=ID change the key, --arg interval=S the
-- seconds between readings. It answers GET /temperature (text, e.g.
-- "21.5"; with Observe, the reading now and then each new one, which
-- `-s 3` prints for three seconds), GET /.well-known/core (the resource
-- list), 4.05 to another method and 4.04 to anything else, to every
-- client, until stopped.

local addr = args.addr or "127.0.0.1:5684"
local psk = args.psk or "73656372657421" -- hex of "secret!"
local identity = args.identity or "sensor-1"
local interval = tonumber(args.interval or 1)

local temp = 20 + math.random() * 3
local TEXT, LINK_FORMAT = 0, 40 -- Content-Formats

local server = assert(coap.serve("dtls://" .. addr, { psk = psk, psk_identity = identity }, {
  ["GET /temperature"] = function(req)
    log.info("GET /temperature" .. (req.observe and " (observe)" or ""))
    return "2.05", string.format("%.1f", temp), TEXT
  end,
  ["GET /.well-known/core"] = function()
    return "2.05", '</temperature>;rt="temperature";ct=0;obs', LINK_FORMAT
  end,
  ["*"] = function(req)
    return req.method == "GET" and "4.04" or "4.05", ""
  end,
}))
log.info("coaps://" .. server:addr() .. " (psk identity " .. identity .. ")")

-- a new reading each interval, sent to every observer of /temperature
every(interval, function()
  temp = temp + (math.random() - 0.5) * 0.2
  coap.notify("/temperature", string.format("%.1f", temp), "2.05", TEXT)
end)
