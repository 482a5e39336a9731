package scan

import "net"

func netInterfaceIndex(zone string) (int, error) {
	ifi, err := net.InterfaceByName(zone)
	if err != nil {
		return 0, err
	}
	return ifi.Index, nil
}
