/** What the REST server and the probes' server share: binding a port, and knowing every socket to cut on close. */
import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { listenError } from '../serving.js';

/** Binds `server`; a port that cannot be bound is a usage error naming `flag`. `urlHost` brackets an IPv6 address. */
export async function bindServer(server: Server, host: string, port: number, flag: string): Promise<{ address: string; port: number; urlHost: string }> {
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
  } catch (error) {
    throw listenError(error, host, port, flag);
  }
  const bound = server.address() as AddressInfo;
  return { address: bound.address, port: bound.port, urlHost: bound.family === 'IPv6' ? `[${bound.address}]` : bound.address };
}

/**
 * Every socket of `server`, from its accept on: closeAllConnections() misses one whose first
 * request has not been parsed yet, and server.close() would wait for it until a timeout.
 */
export function trackSockets(server: Server): Set<Socket> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return sockets;
}
