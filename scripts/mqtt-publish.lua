-- mqtt-publish.lua: an MQTT client publishing a few readings with the mqtt
-- module — connect, publish (QoS 0 unless --arg qos=1|2), disconnect.
--
--   mosquitto -p 1883 &  mosquitto_sub -p 1883 -t 'wirecat/#' -v &
--   wirecat simulate scripts/mqtt-publish.lua --connect 127.0.0.1:1883 --count 3
local topic = args.topic or ("wirecat/" .. device.id .. "/temp")
local count = tonumber(args.count) or 5
local interval = tonumber(args.interval) or 1
local qos = tonumber(args.qos) or 0

local client, err = mqtt.connect(TARGET, { client_id = "wirecat-" .. device.id })
if not client then
  error("cannot reach the broker: " .. err)
end

local temp = 20 + math.random() * 5
for i = 1, count do
  temp = temp + (math.random() - 0.5) * 0.4
  assert(client:publish(topic, string.format("%.1f", temp), { qos = qos }))
  if i < count then
    sleep(interval)
  end
end
client:disconnect()
