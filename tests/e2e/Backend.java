// A small HTTP backend for the end-to-end suite (tests/e2e/lb.py), standing in for a
// Spring Boot service with `server.shutdown=graceful`. JDK 17, com.sun.net.httpserver
// only, compiled at test time. Listens on 127.0.0.1 only.
//
//   GET  /work        200 "ok" after --work-ms (100 ms): the slow endpoint
//   GET  /health      200 "UP", or 503 "DOWN" once /deregister has been called
//   POST /deregister  marks the instance DOWN (like Spring's service-registry endpoint)
//
// On SIGTERM a JVM shutdown hook stops accepting connections (the listening socket is
// closed), waits for the requests in flight, logs what it did ("cleanup complete"), and the
// JVM exits 143 (128 + SIGTERM). With --stubborn the hook hangs instead, as a service whose
// shutdown never ends: only SIGKILL stops it.
//
// Readiness: once listening, it writes "PORT PID\n" to --ready atomically (a temporary
// file renamed into place). --port 0 picks a free port, so nothing races for it.
// Safety net: the JVM halts after --lifetime seconds whatever happens.

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

public final class Backend {
    private static final long START = System.nanoTime();
    private static final AtomicBoolean down = new AtomicBoolean(false);
    private static final AtomicBoolean stopping = new AtomicBoolean(false);
    private static final AtomicInteger inFlight = new AtomicInteger();
    private static final AtomicLong served = new AtomicLong();
    private static final AtomicLong servedWhileStopping = new AtomicLong();

    static synchronized void log(String message) {
        double t = (System.nanoTime() - START) / 1e9;
        System.out.printf("backend: +%.3fs %s%n", t, message);
        System.out.flush();
    }

    static void reply(HttpExchange exchange, int code, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().set("Content-Type", "text/plain");
        exchange.sendResponseHeaders(code, bytes.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(bytes);
        }
    }

    static void drainBody(HttpExchange exchange) throws IOException {
        try (InputStream in = exchange.getRequestBody()) {
            byte[] buffer = new byte[4096];
            while (in.read(buffer) >= 0) {
                // discard
            }
        }
    }

    public static void main(String[] args) throws Exception {
        int port = 0;
        Path ready = null;
        long workMs = 100;
        long lifetime = 300;
        long drainLimitMs = 20_000;
        boolean stubborn = false;
        for (int i = 0; i < args.length; i++) {
            String value = i + 1 < args.length ? args[i + 1] : null;
            switch (args[i]) {
                case "--port": port = Integer.parseInt(value); i++; break;
                case "--ready": ready = Path.of(value); i++; break;
                case "--work-ms": workMs = Long.parseLong(value); i++; break;
                case "--lifetime": lifetime = Long.parseLong(value); i++; break;
                case "--stubborn": stubborn = true; break;
                default:
                    System.err.println("usage: Backend [--port N] --ready FILE [--work-ms MS] [--lifetime S] [--stubborn]");
                    System.exit(2);
            }
        }
        if (ready == null) {
            System.err.println("Backend: --ready FILE is required");
            System.exit(2);
        }

        final long lifetimeS = lifetime;
        Thread reaper = new Thread(() -> {
            try {
                Thread.sleep(lifetimeS * 1000);
            } catch (InterruptedException e) {
                return;
            }
            log("lifetime of " + lifetimeS + "s over: halting");
            Runtime.getRuntime().halt(3);
        }, "lifetime");
        reaper.setDaemon(true);
        reaper.start();

        InetAddress loopback = InetAddress.getByName("127.0.0.1");
        HttpServer server = HttpServer.create(new InetSocketAddress(loopback, port), 256);
        final long work = workMs;
        server.createContext("/work", exchange -> {
            inFlight.incrementAndGet();
            try {
                drainBody(exchange);
                Thread.sleep(work);
                reply(exchange, 200, "ok\n");
                served.incrementAndGet();
                if (stopping.get()) {
                    servedWhileStopping.incrementAndGet();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } finally {
                exchange.close();
                inFlight.decrementAndGet();
            }
        });
        server.createContext("/health", exchange -> {
            try {
                drainBody(exchange);
                if (down.get()) {
                    reply(exchange, 503, "DOWN\n");
                } else {
                    reply(exchange, 200, "UP\n");
                }
            } finally {
                exchange.close();
            }
        });
        server.createContext("/deregister", exchange -> {
            try {
                drainBody(exchange);
                if (!"POST".equals(exchange.getRequestMethod())) {
                    reply(exchange, 405, "POST only\n");
                    return;
                }
                if (!down.getAndSet(true)) {
                    log("deregistered: /health answers 503 from now on");
                }
                reply(exchange, 200, "{\"status\":\"DOWN\"}\n");
            } finally {
                exchange.close();
            }
        });
        ExecutorService pool = Executors.newFixedThreadPool(64);
        server.setExecutor(pool);
        server.start();
        int bound = server.getAddress().getPort();

        final boolean hang = stubborn;
        final long limit = drainLimitMs;
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            stopping.set(true);
            log("SIGTERM: graceful shutdown, " + inFlight.get() + " request(s) in flight; closing the listener");
            // HttpServer.stop closes the listening socket at once, then waits for the
            // exchanges; the hook does its own waiting, so stop runs beside it.
            Thread closer = new Thread(() -> server.stop((int) (limit / 1000)), "closer");
            closer.setDaemon(true);
            closer.start();
            long deadline = System.nanoTime() + limit * 1_000_000;
            boolean closed = false;
            while (!closed && System.nanoTime() < deadline) {
                try (Socket probe = new Socket()) {
                    probe.connect(new InetSocketAddress(loopback, bound), 100);
                    Thread.sleep(5);
                } catch (IOException e) {
                    closed = true;
                } catch (InterruptedException e) {
                    break;
                }
            }
            log("listener closed: new connections are refused");
            while (inFlight.get() > 0 && System.nanoTime() < deadline) {
                try {
                    Thread.sleep(5);
                } catch (InterruptedException e) {
                    break;
                }
            }
            log("in-flight requests finished (" + servedWhileStopping.get() + " completed during shutdown, "
                    + inFlight.get() + " left, " + served.get() + " served in all)");
            if (hang) {
                log("stubborn: cleanup hangs, only SIGKILL ends this JVM");
                while (true) {
                    try {
                        Thread.sleep(60_000);
                    } catch (InterruptedException e) {
                        // keep hanging
                    }
                }
            }
            log("cleanup complete: exiting");
        }, "graceful-shutdown"));

        long pid = ProcessHandle.current().pid();
        Path tmp = ready.resolveSibling(ready.getFileName() + ".tmp");
        Files.writeString(tmp, bound + " " + pid + "\n");
        Files.move(tmp, ready, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        log("listening on 127.0.0.1:" + bound + " as pid " + pid);
    }
}
