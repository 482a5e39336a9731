-- mqtt-sensor.lua: a temperature sensor on MQTT. It says it is online
-- (retained, with a will that says offline if it dies), publishes a reading
-- to sensors/ID/temp every interval (QoS 1), and obeys commands on
-- sensors/ID/cmd: "interval SECONDS", "led on|off", "stop".
--
--   mosquitto -p 1883 & mosquitto_sub -p 1883 -t 'sensors/#' -v &
--   wirecat simulate scripts/mqtt-sensor.lua --connect 127.0.0.1:1883 --count 3 --duration 5s
--   mosquitto_pub -p 1883 -t sensors/2/cmd -m 'interval 0.2'
local base = "sensors/" .. device.id
local interval = tonumber(args.interval) or 1

local client = assert(mqtt.connect(TARGET, {
  client_id = "sensor-" .. device.id,
  keepalive = 30,
  will = { topic = base .. "/status", payload = "offline", qos = 1, retain = true },
}))
assert(client:publish(base .. "/status", "online", { qos = 1, retain = true }))

local temp = 20 + math.random() * 5
local ticker
local function start()
  if ticker then
    ticker:stop()
  end
  ticker = every(interval, function()
    temp = temp + (math.random() - 0.5) * 0.4
    local ok, err = client:publish(base .. "/temp", string.format("%.1f", temp), { qos = 1 })
    if not ok then
      log.warn("publish: " .. err)
    end
  end)
end

-- Each command runs the handler in its own coroutine; the ticker goes on.
assert(client:subscribe(base .. "/cmd", 1, function(msg)
  local cmd, arg = msg.payload:match("^(%S+)%s*(.-)%s*$")
  if cmd == "interval" and tonumber(arg) and tonumber(arg) > 0 then
    interval = tonumber(arg)
    start()
  elseif cmd == "led" and (arg == "on" or arg == "off") then
    client:publish(base .. "/led", arg, { qos = 1, retain = true })
  elseif cmd == "stop" then
    ticker:stop()
    client:publish(base .. "/status", "offline", { qos = 1, retain = true })
    client:disconnect() -- nothing left: the device ends
  else
    log.warn("unknown command: " .. msg.payload)
  end
end))
start()
