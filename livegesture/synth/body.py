"""A person in front of a DVS128: body geometry, arm kinematics and a shaded, textured renderer.

Coordinates. Body coordinates are in pixels at the subject's distance, relative to the neck
base (the point between the shoulders): ``X`` points to the sensor's right, ``Y`` down,
``Z`` towards the camera. Images are ``(height, width)`` arrays, row 0 at the top, so a
subject shown with ``imshow`` stands upright. The camera faces the subject: the subject's
**right** arm (:data:`RIGHT`) is at negative ``X`` and appears on the sensor's **left**
side (small ``x``).

The renderer draws signed-distance shapes (capsules for neck, arms and hands, ellipses for
the head, a tapered rounded box for the torso) with a one-pixel anti-aliased edge,
cylinder shading from a light direction, and a fabric texture that moves with each limb,
so that moving edges and textures change the intensity gradually, as a real scene does.
Frames are rendered in batches, each shape over its bounding box in the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from livegesture.events import DVS128_SIZE, SensorSize

RIGHT, LEFT = 0, 1
"""Arm indices: the subject's right arm (sensor's left side) and left arm."""
SIDE = np.array([-1.0, 1.0])
"""Sign of ``X`` on each arm's side."""

TEXTURE_SIZE = 64
"""Side of the square texture tiles (a power of two: indices wrap with a mask)."""
_TEXTURE_MASK = TEXTURE_SIZE - 1
LAMP_ROWS = 1.5
"""Height of the light fixture at the top edge, pixels."""
SHOULDER_DROP = 3.0
"""Shoulder joints lie this far below the neck base."""


@dataclass(frozen=True)
class BodyShape:
    """One subject's body: position on the sensor and dimensions, in pixels."""

    size: float
    """Pixels per unit of the nominal body (gesture programs scale their motions by it)."""
    neck_x: float
    neck_y: float
    shoulder_half: float
    upper_arm: float
    forearm: float
    hand: float
    upper_arm_radius: float
    forearm_radius: float
    hand_radius: float
    head_rx: float
    head_ry: float
    neck_length: float
    torso_half_width: float
    camera_distance: float
    """Distance from camera to the body plane, for perspective (same pixel units)."""

    @property
    def reach(self) -> float:
        return self.upper_arm + self.forearm

    def shoulders(self) -> np.ndarray:
        """``(2, 3)`` shoulder positions, right then left."""
        return np.array([[SIDE[arm] * self.shoulder_half, SHOULDER_DROP, 0.0] for arm in (RIGHT, LEFT)])


def sample_body(rng: np.random.Generator, sensor_size: SensorSize = DVS128_SIZE) -> BodyShape:
    """A subject of random size (distance) and position, roughly centred like DVS Gesture's."""
    width, height = sensor_size
    size = rng.uniform(1.05, 1.32) * min(width, height) / 128
    return BodyShape(
        size=size,
        neck_x=width / 2 + rng.uniform(-7, 7),
        neck_y=height * 0.36 + rng.uniform(-5, 4),
        shoulder_half=size * rng.uniform(17.5, 20.5),
        upper_arm=size * rng.uniform(23.5, 26.5),
        forearm=size * rng.uniform(21.5, 24.5),
        hand=size * rng.uniform(8.0, 10.0),
        upper_arm_radius=size * rng.uniform(4.6, 5.6),
        forearm_radius=size * rng.uniform(3.6, 4.4),
        hand_radius=size * rng.uniform(3.4, 4.2),
        head_rx=size * rng.uniform(8.0, 9.2),
        head_ry=size * rng.uniform(10.0, 11.2),
        neck_length=size * rng.uniform(6.0, 8.0),
        torso_half_width=size * rng.uniform(16.0, 19.5),
        camera_distance=size * rng.uniform(200, 280),
    )


@dataclass(frozen=True)
class Appearance:
    """Albedos (reflectance, 0..1) and clothing of one subject."""

    shirt: float
    skin: float
    hair: float
    long_sleeves: bool
    texture_contrast: float
    """Relative amplitude of the fabric texture."""
    texture_scale: float
    """Texture texels per pixel."""
    texture_seed: int


def sample_appearance(rng: np.random.Generator) -> Appearance:
    """Random clothing and skin; the shirt is dark or light, never the mid grey of the walls."""
    shirt = float(rng.choice([rng.uniform(0.05, 0.2), rng.uniform(0.55, 0.85)]))
    return Appearance(
        shirt=shirt,
        skin=rng.uniform(0.25, 0.65),
        hair=rng.uniform(0.03, 0.25),
        long_sleeves=bool(rng.random() < 0.5),
        texture_contrast=rng.uniform(0.1, 0.3),
        texture_scale=rng.uniform(0.6, 1.4),
        texture_seed=int(rng.integers(2**31)),
    )


@dataclass(frozen=True)
class Illumination:
    """How a lighting condition lights the scene (the renderer's part of a lighting)."""

    level: float
    """Overall illuminance, relative (1 = a bright office)."""
    ambient: float
    """Fraction of diffuse light; the rest comes from ``direction``."""
    direction: tuple[float, float, float]
    """Unit vector towards the main light, body coordinates."""
    gradient: float
    """Relative brightness change across the image, left to right."""
    lamp: float
    """Brightness of the light fixture at the top of the view, relative to a white wall (below 1: off)."""


@dataclass(frozen=True)
class Backdrop:
    """The static room behind the subject."""

    wall: float
    wall_texture: float
    panel: float
    """Albedo of a door/cabinet panel at one side."""
    panel_x: float
    """Panel edge, fraction of the width (negative: panel on the left)."""
    lamp_x: float
    """Centre of the light fixture at the top edge, fraction of the width."""
    lamp_width: float
    """Its width, fraction of the width."""
    seed: int


def sample_backdrop(rng: np.random.Generator) -> Backdrop:
    return Backdrop(
        wall=rng.uniform(0.3, 0.5),
        wall_texture=rng.uniform(0.02, 0.06),
        panel=rng.uniform(0.15, 0.7),
        panel_x=float(rng.choice([-1, 1]) * rng.uniform(0.08, 0.16)),
        lamp_x=rng.uniform(0.12, 0.88),
        lamp_width=rng.uniform(0.04, 0.08),
        seed=int(rng.integers(2**31)),
    )


@dataclass(frozen=True, eq=False)
class PoseTrack:
    """Per-frame image geometry of a clip: what :class:`Renderer` draws."""

    joints: np.ndarray
    """``(n, 2, 4, 2)``: arm (right, left), joint (shoulder, elbow, wrist, hand tip), image ``(x, y)``."""
    radii: np.ndarray
    """``(n, 2, 4)``: perspective scale of the limb radii at each joint."""
    depth: np.ndarray
    """``(n, 2)``: mean ``Z`` of each forearm; the nearer arm is drawn last."""
    body_offset: np.ndarray
    """``(n, 2)``: sway of the torso, pixels."""
    head_offset: np.ndarray
    """``(n, 2)``: head motion relative to the torso, pixels."""

    def __len__(self) -> int:
        return len(self.joints)

    def take(self, frames: np.ndarray) -> PoseTrack:
        """The track at a subset of its frames."""
        return PoseTrack(*(getattr(self, f.name)[frames] for f in fields(self)))

    def motion(self) -> np.ndarray:
        """``(n - 1,)``: the largest image displacement of any joint, torso or head between frames."""
        points = np.concatenate([self.joints.reshape(len(self), -1, 2), self.body_offset[:, None],
                                 (self.body_offset + self.head_offset)[:, None]], axis=1)
        return np.sqrt((np.diff(points, axis=0) ** 2).sum(axis=2)).max(axis=1)


def solve_arms(shoulders: np.ndarray, hands: np.ndarray, poles: np.ndarray,
               upper: float, lower: float) -> tuple[np.ndarray, np.ndarray]:
    """Two-link inverse kinematics, vectorised over frames and arms.

    ``shoulders`` ``(2, 3)``, ``hands`` and ``poles`` ``(n, 2, 3)``: target wrist
    positions and the direction the elbow should point to. Returns ``(elbows, wrists)``;
    a target out of reach is pulled onto the sphere the arm can reach.
    """
    axis = hands - shoulders
    dist = np.linalg.norm(axis, axis=-1, keepdims=True)
    unit = axis / np.maximum(dist, 1e-6)
    d = np.clip(dist, abs(upper - lower) + 1e-3, upper + lower - 1e-3)
    along = (upper**2 - lower**2 + d**2) / (2 * d)
    across = np.sqrt(np.maximum(upper**2 - along**2, 0.0))
    perp = poles - np.sum(poles * unit, axis=-1, keepdims=True) * unit
    norm = np.linalg.norm(perp, axis=-1, keepdims=True)
    fallback = np.broadcast_to(np.array([0.0, 0.0, -1.0]), perp.shape)
    perp = np.where(norm > 1e-6, perp / np.maximum(norm, 1e-6), fallback)
    elbows = shoulders + along * unit + across * perp
    wrists = shoulders + d * unit
    return elbows, wrists


def project(points: np.ndarray, body: BodyShape, offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Body coordinates ``(..., 3)`` -> image ``(..., 2)`` and the perspective scale ``(...)``."""
    scale = body.camera_distance / (body.camera_distance - points[..., 2])
    xy = points[..., :2] * scale[..., None] + np.array([body.neck_x, body.neck_y]) + offset
    return xy, scale


def _smooth_noise(rng: np.random.Generator, size: int, blur: float) -> np.ndarray:
    """A tileable ``size x size`` random texture with unit standard deviation."""
    field = rng.standard_normal((size, size))
    freq = np.fft.fftfreq(size)
    gauss = np.exp(-0.5 * (2 * np.pi * blur) ** 2 * (freq[:, None] ** 2 + freq[None, :] ** 2))
    smooth = np.fft.ifft2(np.fft.fft2(field) * gauss).real
    return smooth / smooth.std()


def _col(values) -> np.ndarray:
    """Per-frame values ``(k,)`` as float32 ``(k, 1, 1)``, to broadcast over a batch of images."""
    return np.asarray(values, dtype=np.float32).reshape(-1, 1, 1)


def _clip01(a: np.ndarray) -> np.ndarray:
    np.maximum(a, 0.0, out=a)
    return np.minimum(a, 1.0, out=a)


class Renderer:
    """Renders the scene's linear intensity (illuminance x reflectance) along a :class:`PoseTrack`.

    One renderer per subject, backdrop and illumination. :meth:`render` draws a batch of
    consecutive frames at once (``(k, height, width)``), each shape over the union of its
    bounding boxes in the batch: far fewer numpy calls than frame by frame.
    """

    def __init__(self, body: BodyShape, look: Appearance, backdrop: Backdrop, light: Illumination,
                 sensor_size: SensorSize = DVS128_SIZE) -> None:
        self.body = body
        self.look = look
        width, height = sensor_size
        self.xs = np.arange(width, dtype=np.float32)
        self.ys = np.arange(height, dtype=np.float32)
        self.shape = (height, width)
        direction = np.asarray(light.direction, dtype=np.float64)
        self._light = tuple(float(c) for c in direction / np.linalg.norm(direction))
        self._diffuse = 1.0 - float(light.ambient)
        self._ambient = float(light.ambient)
        # Illuminance: a left-right gradient and a mild vignette, times the level.
        u = (self.xs - width / 2) / width
        v = (self.ys - height / 2) / height
        vignette = 1.0 - 0.35 * (u[None, :] ** 2 + v[:, None] ** 2)
        self.illuminance = (light.level * vignette * (1.0 + light.gradient * u[None, :])).astype(np.float32)
        rng = np.random.default_rng(look.texture_seed)
        fabric = _smooth_noise(rng, TEXTURE_SIZE, 1.2) + 0.6 * np.sin(
            np.arange(TEXTURE_SIZE) * 2 * np.pi * 6 / TEXTURE_SIZE)[None, :]
        self.fabric = (1.0 + look.texture_contrast * fabric / fabric.std()).clip(0.3, None).astype(np.float32)
        self.hair_tex = (1.0 + 0.35 * _smooth_noise(rng, TEXTURE_SIZE, 0.7)).clip(0.3, None).astype(np.float32)
        self.background = self._backdrop(backdrop, light.lamp)

    def _backdrop(self, backdrop: Backdrop, lamp: float) -> np.ndarray:
        height, width = self.shape
        rng = np.random.default_rng(backdrop.seed)
        side = max(height, width)
        wall = backdrop.wall * (1.0 + backdrop.wall_texture * _smooth_noise(rng, side, 1.5)[:height, :width])
        edge = width / 2 + backdrop.panel_x * width * 3.5
        x = self.xs[None, :]
        inside = np.clip(edge - x + 0.5, 0, 1) if backdrop.panel_x < 0 else np.clip(x - edge + 0.5, 0, 1)
        panel = backdrop.panel * (1.0 + 0.02 * _smooth_noise(rng, side, 3.0)[:height, :width])
        reflectance = wall * (1 - inside) + panel * inside
        reflectance *= 1.0 - 0.1 * ((self.ys[:, None] - height / 2) / height) ** 2
        # A light fixture (a tube or its reflection) along the top edge of the view.
        half = backdrop.lamp_width * width / 2
        across = np.clip(half - np.abs(x - backdrop.lamp_x * width) + 0.5, 0, 1)
        down = np.clip(LAMP_ROWS - self.ys[:, None] + 0.5, 0, 1)
        reflectance += across * down * (lamp - reflectance)
        return reflectance.astype(np.float32)

    def render(self, track: PoseTrack, start: int, stop: int) -> np.ndarray:
        """Linear intensity of frames ``start .. stop - 1``: ``(stop - start, height, width)`` float32."""
        body, look = self.body, self.look
        canvas = np.repeat(self.background[None], stop - start, axis=0)
        sway = track.body_offset[start:stop]
        head = track.head_offset[start:stop]
        nx, ny = body.neck_x + sway[:, 0], body.neck_y + sway[:, 1]
        self._torso(canvas, nx, ny)
        neck_top = ny - body.neck_length
        ones = np.ones_like(nx)
        self._capsule(canvas, nx, ny + 2, nx + head[:, 0] * 0.5, neck_top, ones * body.head_rx * 0.5,
                      ones * body.head_rx * 0.45, look.skin, None)
        head_x, head_y = nx + head[:, 0], neck_top - body.head_ry * 0.85 + head[:, 1]
        self._ellipse(canvas, head_x, head_y - body.head_ry * 0.12, body.head_rx * 1.06, body.head_ry * 0.98,
                      look.hair, self.hair_tex)
        self._ellipse(canvas, head_x, head_y + body.head_ry * 0.1, body.head_rx * 0.92, body.head_ry * 0.88,
                      look.skin, None)
        sleeve = look.shirt if look.long_sleeves else look.skin
        sleeve_tex = self.fabric if look.long_sleeves else None
        right_first = track.depth[start:stop, RIGHT] <= track.depth[start:stop, LEFT]
        changes = np.flatnonzero(np.diff(right_first)) + 1
        for lo, hi in zip(np.r_[0, changes], np.r_[changes, stop - start]):
            part = canvas[lo:hi]
            for arm in ((RIGHT, LEFT) if right_first[lo] else (LEFT, RIGHT)):
                joints = track.joints[start + lo:start + hi, arm]
                radii = track.radii[start + lo:start + hi, arm]
                limbs = ((body.upper_arm_radius, 0.9, look.shirt, self.fabric),
                         (body.forearm_radius, 0.8, sleeve, sleeve_tex),
                         (body.hand_radius, 0.85, look.skin, None))
                for j, (radius, taper, albedo, texture) in enumerate(limbs):
                    a, b = joints[:, j], joints[:, j + 1]
                    self._capsule(part, a[:, 0], a[:, 1], b[:, 0], b[:, 1], radii[:, j] * radius,
                                  radii[:, j + 1] * radius * taper, albedo, texture)
        canvas *= self.illuminance
        return canvas

    def _shade(self, nx: np.ndarray, ny: np.ndarray, nz: np.ndarray) -> np.ndarray:
        lx, ly, lz = self._light
        dot = nx * lx + ny * ly + nz * lz
        np.maximum(dot, 0.0, out=dot)
        dot *= self._diffuse
        dot += self._ambient
        return dot

    def _box(self, x0: float, x1: float, y0: float, y1: float) -> tuple[slice, slice] | None:
        height, width = self.shape
        c0, c1 = max(int(x0), 0), min(int(x1) + 2, width)
        r0, r1 = max(int(y0), 0), min(int(y1) + 2, height)
        if c0 >= c1 or r0 >= r1:
            return None
        return slice(r0, r1), slice(c0, c1)

    def _paint(self, canvas: np.ndarray, box: tuple[slice, slice], alpha: np.ndarray, color: np.ndarray) -> None:
        patch = canvas[:, box[0], box[1]]
        color -= patch
        color *= alpha
        patch += color

    def _texture(self, texture: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        scale = self.look.texture_scale
        row = (u * scale).astype(np.int32)
        row &= _TEXTURE_MASK
        row *= TEXTURE_SIZE
        col = ((v + 32.0) * scale).astype(np.int32)
        col &= _TEXTURE_MASK
        return np.take(texture, row + col)

    def _capsule(self, canvas: np.ndarray, ax: np.ndarray, ay: np.ndarray, bx: np.ndarray, by: np.ndarray,
                 ra: np.ndarray, rb: np.ndarray, albedo: float, texture: np.ndarray | None) -> None:
        """Shaded, textured tapered capsules from ``a`` to ``b``, one per frame of the batch."""
        r = float(max(ra.max(), rb.max())) + 1
        box = self._box(min(ax.min(), bx.min()) - r, max(ax.max(), bx.max()) + r,
                        min(ay.min(), by.min()) - r, max(ay.max(), by.max()) + r)
        if box is None:
            return
        rows, cols = box
        length = np.maximum(np.hypot(bx - ax, by - ay), 1e-3)
        ux, uy = (bx - ax) / length, (by - ay) / length
        dx = self.xs[cols][None, None, :] - _col(ax)
        dy = self.ys[rows][None, :, None] - _col(ay)
        cu, cv = _col(ux), _col(uy)
        along = dx * cu + dy * cv
        across = dy * cu - dx * cv
        t = _clip01(along * _col(1.0 / length))
        radius = _col(rb - ra) * t
        radius += _col(ra)
        ex = t * _col(length)
        np.subtract(along, ex, out=ex)
        ex *= ex
        dist = across * across
        dist += ex
        np.sqrt(dist, out=dist)
        alpha = _clip01(radius - dist + 0.5)
        n_side = across / radius
        np.maximum(n_side, -1.0, out=n_side)
        np.minimum(n_side, 1.0, out=n_side)
        nz = np.sqrt(1.0 - n_side * n_side)
        # The across-axis normal points along (-uy, ux) in the image.
        lx, ly, lz = self._light
        dot = n_side * _col(ly * ux - lx * uy)
        dot += nz * np.float32(lz)
        np.maximum(dot, 0.0, out=dot)
        shade = dot * np.float32(self._diffuse * albedo) + np.float32(self._ambient * albedo)
        if texture is not None:
            shade *= self._texture(texture, along, across)
        self._paint(canvas, box, alpha, shade)

    def _ellipse(self, canvas: np.ndarray, cx: np.ndarray, cy: np.ndarray, rx: float, ry: float,
                 albedo: float, texture: np.ndarray | None) -> None:
        box = self._box(cx.min() - rx - 1, cx.max() + rx + 1, cy.min() - ry - 1, cy.max() + ry + 1)
        if box is None:
            return
        rows, cols = box
        qx = (self.xs[cols][None, None, :] - _col(cx)) * np.float32(1 / rx)
        qy = (self.ys[rows][None, :, None] - _col(cy)) * np.float32(1 / ry)
        rho = np.sqrt(qx * qx + qy * qy)
        alpha = _clip01((1.0 - rho) * np.float32(min(rx, ry)) + 0.5)
        nz = np.sqrt(np.maximum(1.0 - rho * rho, 0.0))
        shade = self._shade(qx, qy, nz)
        shade *= np.float32(albedo)
        if texture is not None:
            shade *= self._texture(texture, qy * np.float32(ry), qx * np.float32(rx))
        self._paint(canvas, box, alpha, shade)

    def _torso(self, canvas: np.ndarray, nx: np.ndarray, ny: np.ndarray) -> None:
        """A tapered, rounded box from the shoulders down past the bottom of the image."""
        body = self.body
        half = body.torso_half_width
        top = ny - 1.0
        corner = body.upper_arm_radius * 1.4
        box = self._box(nx.min() - half - 2, nx.max() + half + 2, top.min() - 1, self.shape[0])
        if box is None:
            return
        rows, cols = box
        sx = self.xs[cols][None, None, :] - _col(nx)
        py = self.ys[rows][None, :, None] - _col(top)
        local_half = np.float32(half) - np.float32(0.06) * py
        qx = np.abs(sx) - local_half + np.float32(corner)
        qy = np.float32(corner) - py
        ox, oy = np.maximum(qx, 0), np.maximum(qy, 0)
        outside = np.sqrt(ox * ox + oy * oy)
        sdf = outside + np.minimum(np.maximum(qx, qy), 0) - np.float32(corner)
        alpha = _clip01(0.5 - sdf)
        n_side = sx / local_half
        np.maximum(n_side, -1.0, out=n_side)
        np.minimum(n_side, 1.0, out=n_side)
        shade = self._shade(n_side * np.float32(0.8), np.float32(0.1), np.sqrt(1.0 - 0.64 * n_side * n_side))
        shade *= np.float32(self.look.shirt)
        shade *= self._texture(self.fabric, py, sx)
        self._paint(canvas, box, alpha, shade)
